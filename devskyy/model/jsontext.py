"""JSON text from plain JSON values with one reusable encoder (pure).

``json.dumps`` (and ``JSONEncoder.encode``) builds a new C encoder on every call, for the
circular-reference check's markers. Values known to be plain JSON (a step's checked output,
an audit event's details) are never circular, so one C encoder built without markers can
be reused for every call: the text is exactly ``json.dumps``'s with the same options, in a
third of the time for the small dicts written per step (0.4 against 1.3 us).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

_c_make_encoder: Callable[..., Callable[[Any, int], Sequence[str]]] | None = getattr(
    json.encoder, "c_make_encoder", None
)


def json_encoder(
    *, sort_keys: bool = False, separators: tuple[str, str] = (", ", ": ")
) -> Callable[[Any], str]:
    """``lambda value: json.dumps(value, sort_keys=..., separators=...)`` (ASCII only, NaN
    allowed, as ``json.dumps``'s defaults) for values that are never circular."""
    python = json.JSONEncoder(sort_keys=sort_keys, separators=separators)
    if _c_make_encoder is None:  # pragma: no cover - CPython has the C encoder
        return python.encode
    item, key = separators
    chunks = _c_make_encoder(
        None,  # no markers: no circular check (the values never are)
        python.default,
        json.encoder.encode_basestring_ascii,
        None,  # no indent
        key,
        item,
        sort_keys,
        False,  # skipkeys
        True,  # allow_nan
    )

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode
