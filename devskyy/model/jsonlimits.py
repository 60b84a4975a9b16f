"""The size and depth limits of JSON values, checked without recursion (pure).

``json.loads``, ``json.dumps`` and every walk over a document recurse once per level of
nesting, so a hostile request body or a corrupt stored row nested 100,000 levels deep would
end in ``RecursionError``. ``check_json_text`` measures
JSON *text* (its size, and its nesting in one linear pass) before anything decodes it;
``check_json_depth`` does the same for a value already in memory, with an explicit stack;
``bounded_loads`` is ``json.loads`` behind the first. All raise ``JsonLimitError`` (a
``ValueError``) naming the limit.

This sits in ``model`` (the bottom layer) because both sides need the one rule: the API
(through ``devskyy.core.jsonvalue``) on request bodies, and the stores (``adapters``) on
every JSON document they read back.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 100
"""Nested arrays and objects in one JSON value (a bare scalar is level 0)."""
MAX_BYTES = 16 * 1024 * 1024
"""Size of one JSON text, in bytes (``str`` texts are measured in characters)."""

# An escape inside a string (a backslash outside one is a syntax error where json.loads
# stops, so nothing after it is ever decoded).
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JsonLimitError(ValueError):
    """A JSON text or value is deeper or larger than the limits allow."""


def _too_deep(max_depth: int) -> JsonLimitError:
    return JsonLimitError(f"JSON nested deeper than {max_depth} levels")


def check_json_text(
    text: str | bytes, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES
) -> None:
    """Refuse JSON text over ``max_bytes`` or nested deeper than ``max_depth``; linear.

    Brackets inside strings do not count. The text need not be valid JSON: this only makes
    sure that decoding it (which reports its own syntax errors) cannot recurse deeper than
    ``max_depth``. The common case (no more brackets in all than the limit) is a count;
    otherwise strings are cut out and only the brackets are walked.
    """
    if len(text) > max_bytes:
        raise JsonLimitError(f"JSON text is larger than the limit of {max_bytes} bytes")
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return
    # Without its escapes, the text alternates outside/inside a string at every quote:
    # split there, all in C (a regex for whole strings was most of the cost, and it
    # retried from every later quote after a string left open: quadratic). A string
    # left open keeps its brackets: not JSON either way, refused as before.
    parts = _ESCAPE.sub(b"", data).split(b'"')
    outside = parts[0::2] if len(parts) % 2 else [*parts[0::2], parts[-1]]
    depth = 0
    for byte in b"".join(outside).translate(None, _NOT_BRACKETS):
        if byte in b"[{":
            depth += 1
            if depth > max_depth:
                raise _too_deep(max_depth)
        else:
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


def bounded_loads(text: str | bytes) -> Any:
    """``json.loads`` of text within the limits (``JsonLimitError`` beyond them)."""
    check_json_text(text)
    return json.loads(text)
