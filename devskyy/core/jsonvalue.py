"""JSON values: check and copy what crosses the step-runner seam (pure).

Step inputs and outputs must be JSON (docs/architecture.md). ``json_copy`` gives what a JSON round
trip would give, without serializing: the small dicts agents return cost a fraction of a
``json.loads(json.dumps(...))``.

Bounded input: the limits and their linear checks (``check_json_text`` for text,
``check_json_depth`` for a value in memory) live in ``devskyy.model.jsonlimits`` so that the
stores (adapters) use the same rule as the API, which calls them through this module on
request bodies; ``json_copy`` refuses values nested past ``MAX_DEPTH`` itself.
"""

from __future__ import annotations

from typing import Any

from devskyy.model.jsonlimits import (
    MAX_BYTES,
    MAX_DEPTH,
    JsonLimitError,
    check_json_depth,
    check_json_text,
)

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "JsonLimitError",
    "check_json_depth",
    "check_json_text",
    "json_copy",
]


def json_copy(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` made only of JSON types; ``TypeError``/``ValueError`` if it is not.

    What a JSON round trip would give (tuples become lists, str/int/float subclasses such
    as enums become plain values) at a fraction of the cost for the small dicts agents
    return. Keys must be strings.
    """
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__} ({key!r})")
            kind = type(item)
            if kind is str or kind is int or kind is float or kind is bool or item is None:
                copied[key[:]] = item  # a plain scalar, as above, without a call per value
            else:
                copied[key[:]] = json_copy(item, depth + 1)
        return copied
    if isinstance(value, list | tuple):
        return [json_copy(item, depth + 1) for item in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return value[:]
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    raise TypeError(f"Object of type {kind.__name__} is not JSON serializable")
