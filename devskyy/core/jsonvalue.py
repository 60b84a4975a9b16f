"""JSON values: check and copy what crosses the step-runner seam (pure).

Step inputs and outputs must be JSON (DESIGN.md §3). ``json_copy`` gives what a JSON round
trip would give, without serializing: the small dicts agents return cost a fraction of a
``json.loads(json.dumps(...))``.

Bounded input: ``json.loads``, ``json_copy`` and every walk over a document recurse once per
level of nesting, so a hostile body or a corrupt stored row nested 100,000 levels deep
would end in ``RecursionError``. ``check_json_text`` counts the nesting of JSON *text* in one
pass without recursion (and its size) before anything decodes it; ``check_json_depth`` does
the same for a value already in memory, with an explicit stack. Both raise
``JsonLimitError`` (a ``ValueError``) naming the limit. The API calls the first on request
bodies; the stores call it on documents they read back.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 100
"""Nested arrays and objects in one JSON value (a bare scalar is level 0)."""
MAX_BYTES = 16 * 1024 * 1024
"""Size of one JSON text, in bytes (``str`` texts are measured in characters)."""
_MAX_DEPTH = MAX_DEPTH

_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")


class JsonLimitError(ValueError):
    """A JSON text or value is deeper or larger than the limits allow."""


def _too_deep(max_depth: int) -> JsonLimitError:
    return JsonLimitError(f"JSON nested deeper than {max_depth} levels")


def check_json_text(
    text: str | bytes, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES
) -> None:
    """Refuse JSON text over ``max_bytes`` or nested deeper than ``max_depth``; linear.

    Brackets inside strings do not count. The text need not be valid JSON: this only
    makes sure that decoding it (which reports its own syntax errors) cannot recurse
    deeper than ``max_depth``.
    """
    if len(text) > max_bytes:
        raise JsonLimitError(f"JSON text is larger than the limit of {max_bytes} bytes")
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > max_depth:
                raise _too_deep(max_depth)
        elif byte in _CLOSE:
            depth -= 1


def check_json_depth(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a decoded value (lists, tuples, dicts) nested deeper than ``max_depth``.

    An explicit stack, not recursion: the value may be the deep thing being guarded
    against. A value that contains itself counts as infinitely deep.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > max_depth:
            raise _too_deep(max_depth)
        stack.extend((child, depth + 1) for child in children)


def json_copy(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` made only of JSON types; ``TypeError``/``ValueError`` if it is not.

    What a JSON round trip would give (tuples become lists, str/int/float subclasses such
    as enums become plain values) at a fraction of the cost for the small dicts agents
    return. Keys must be strings.
    """
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if depth > _MAX_DEPTH:
        raise ValueError(f"nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, dict):
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__} ({key!r})")
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
