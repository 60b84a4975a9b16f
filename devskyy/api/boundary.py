"""What a request brings in, cleaned at the boundary before any handler sees it (pure).

- **Depth.** A JSON body nested deeper than ``core.jsonvalue.MAX_DEPTH`` is refused
  (422) before anything decodes it: decoding, validating, storing and later reading it
  back all recurse once per level.
- **Keys.** A devskyy API key (prefix and checksum, ``core.keys.redact``) anywhere in a
  JSON body or in the query string of an ``/api/`` route becomes ``[redacted]`` before the
  handler, the run store or a log line sees it. The one exception is the route whose job
  is to look at a key (``POST /api/security/api-key/validate``). A key hidden by JSON
  escapes (``dsk\\u005f…``) is found too: the body is decoded and searched whenever it
  holds an escape.
- **Answers.** ``clean_answer`` redacts keys out of error bodies and shows their server
  paths as every other answer does (``api/paths_out.ShownPaths``: workspace-relative, in
  the form a request takes, any other server path ``<server path>``): an error never
  repeats a key, and never tells where on the server a folder is.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes, urlencode

from devskyy.api.paths_out import ShownPaths
from devskyy.core.jsonvalue import JsonLimitError, check_json_text
from devskyy.core.keys import MARK, redact

KEY_ROUTES = frozenset({("POST", "/api/security/api-key/validate")})
"""Routes whose body is a key on purpose: never redacted."""

_MARK = MARK.encode()


def is_json(content_type: str) -> bool:
    """Whether a ``Content-Type`` is JSON (``application/json``, ``…+json``)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def too_deep(body: bytes) -> str | None:
    """Why a JSON body may not be decoded (too deep, too large), or None."""
    try:
        check_json_text(body)
    except JsonLimitError as exc:
        return str(exc)
    return None


def redact_json_body(body: bytes) -> bytes:
    """The body with every key in it redacted (the same bytes when there is none)."""
    if _MARK not in body and b"\\u" not in body:
        return body
    try:
        value = json.loads(body)
    except ValueError:
        # Not JSON (the handler reports that): redact the text as it is.
        return redact(body.decode("utf-8", "replace")).encode() if _MARK in body else body
    cleaned = redact(value)
    if cleaned is value:
        return body
    return json.dumps(cleaned, ensure_ascii=False).encode()


def redact_query(query: bytes) -> bytes:
    """The query string with every key in a name or value redacted."""
    if _MARK not in unquote_to_bytes(query):
        return query
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    return urlencode([(redact(k), redact(v)) for k, v in pairs]).encode("latin-1")


def clean_answer(body: Any, paths: ShownPaths | None) -> Any:
    """An error body with keys redacted and its paths shown by ``paths`` (every string is
    a message; None: the app has no workspace yet, only keys are redacted)."""
    value = json.loads(json.dumps(body, default=str))  # JSON values only, as answered
    return redact(value if paths is None else paths.shown(value, message=True))
