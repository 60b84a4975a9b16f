"""API key format, parsing and hashing (pure: randomness comes in as bytes).

A key reads ``dsk_<keyid>_<secret><checksum>``:

- ``keyid``: 12 characters ``[0-9a-z]`` (from 8 random bytes), public: it names the
  key in ``keys list``, the audit log and ``keys revoke``; the store looks keys up by it.
- ``secret``: 33 base62 characters holding 24 random bytes (192 bits).
- ``checksum``: 6 base62 characters, the CRC32 of everything before it. As with
  GitHub's tokens, a secret scanner can tell a real key from random noise offline, and
  a typo is reported as ``malformed`` without touching the store.

``redact(value)`` is the one redaction of the project: every well-formed key inside any
string of a JSON-like value (keys of mappings included) becomes ``[redacted]``. The API
applies it to request bodies and query strings, the run store to parameters, step
outputs and errors. The audit chain applies ``redact_text`` to every string of an event
while it turns the details into JSON (``core.audit.scrub``: mapping keys that are not
strings become text first, and are redacted too).

Only ``hash_secret(key_id, secret)`` is ever stored: SHA-256 over a domain tag, the key
id and the secret, so a hash copied onto another key id does not verify. ``verify``
compares in constant time with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import zlib
from dataclasses import dataclass
from typing import Any

PREFIX = "dsk"
KEY_ID_BYTES = 8
SECRET_BYTES = 24
KEY_ID_LEN = 12
SECRET_LEN = 33
CHECKSUM_LEN = 6
KEY_LEN = len(PREFIX) + 1 + KEY_ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_HASH_TAG = b"devskyy.api-key.v1\x00"
_SHAPE = re.compile(
    rf"^{PREFIX}_(?P<key_id>[0-9a-z]{{{KEY_ID_LEN}}})_"
    rf"(?P<secret>[0-9A-Za-z]{{{SECRET_LEN}}})(?P<checksum>[0-9A-Za-z]{{{CHECKSUM_LEN}}})$"
)
KEY_ID_PATTERN = re.compile(rf"^[0-9a-z]{{{KEY_ID_LEN}}}$")
_FIND = re.compile(rf"{PREFIX}_[0-9a-z]{{{KEY_ID_LEN}}}_[0-9A-Za-z]{{{SECRET_LEN + CHECKSUM_LEN}}}")
MARK = PREFIX + "_"
REDACTED = "[redacted]"
MAX_REDACT_DEPTH = 256


def _encode(value: int, alphabet: str, width: int) -> str:
    base = len(alphabet)
    out = []
    for _ in range(width):
        value, digit = divmod(value, base)
        out.append(alphabet[digit])
    if value:
        raise ValueError("value does not fit the width")
    return "".join(reversed(out))


def checksum(body: str) -> str:
    """The 6-character base62 CRC32 of ``body`` (``dsk_<keyid>_<secret>``)."""
    return _encode(zlib.crc32(body.encode("ascii")), BASE62, CHECKSUM_LEN)


@dataclass(frozen=True)
class IssuedKey:
    """A freshly made key: ``key`` is shown once, then only ``secret_hash`` is kept."""

    key: str
    key_id: str
    secret_hash: str


@dataclass(frozen=True)
class ParsedKey:
    """A well-formed key split into its parts."""

    key_id: str
    secret: str


@dataclass(frozen=True)
class Malformed:
    """Why a presented string is not a key (never repeats the string)."""

    reason: str


def make_key(key_id_bytes: bytes, secret_bytes: bytes) -> IssuedKey:
    """A key from random bytes (8 for the id, 24 for the secret)."""
    if len(key_id_bytes) != KEY_ID_BYTES or len(secret_bytes) != SECRET_BYTES:
        raise ValueError(f"need {KEY_ID_BYTES} and {SECRET_BYTES} random bytes")
    # 36**12 > 2**62: the id keeps 62 of the 64 bits, enough to make collisions negligible.
    key_id = _encode(int.from_bytes(key_id_bytes, "big") % 36**KEY_ID_LEN, BASE36, KEY_ID_LEN)
    secret = _encode(int.from_bytes(secret_bytes, "big"), BASE62, SECRET_LEN)
    body = f"{PREFIX}_{key_id}_{secret}"
    return IssuedKey(body + checksum(body), key_id, hash_secret(key_id, secret))


def parse_key(text: str) -> ParsedKey | Malformed:
    """Split a presented key, or say why it is not one."""
    if not text.startswith(PREFIX + "_"):
        return Malformed("missing the 'dsk_' prefix")
    if len(text) != KEY_LEN:
        return Malformed(f"wrong length (expected {KEY_LEN} characters)")
    match = _SHAPE.match(text)
    if match is None:
        return Malformed("unexpected characters")
    body = text[:-CHECKSUM_LEN]
    if not hmac.compare_digest(checksum(body), match["checksum"]):
        return Malformed("checksum mismatch")
    return ParsedKey(match["key_id"], match["secret"])


def looks_like_key(text: str) -> bool:
    """True when ``text`` is a well-formed key with a valid checksum (for scanners)."""
    return isinstance(parse_key(text), ParsedKey)


def find_keys(text: str) -> list[str]:
    """Every well-formed key inside ``text`` (a secret scanner's check)."""
    return [m for m in _FIND.findall(text) if looks_like_key(m)]


def redact_text(text: str) -> str:
    """``text`` with every well-formed key (prefix and checksum) replaced by ``[redacted]``."""
    if MARK not in text:  # the common case costs one substring search
        return text
    return _FIND.sub(lambda m: REDACTED if looks_like_key(m.group(0)) else m.group(0), text)


def _holds_mark(value: Any) -> bool:
    """Whether any string (or mapping key) inside ``value`` holds the key prefix.

    An explicit stack, not recursion: this is where ``redact`` stops recursing.
    """
    stack = [value]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        if isinstance(item, str):
            if MARK in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif item is not None and not isinstance(item, bool | int | float) and MARK in str(item):
            return True
        if seen > 10_000_000:  # a value that contains itself: say yes, redact it whole
            return True
    return False


def redact(value: Any, _depth: int = 0) -> Any:
    """``value`` with every key inside its strings (and mapping keys) redacted.

    JSON-like values keep their shape; a value with nothing to redact is returned as is
    (no copy). Other objects are returned unchanged unless their text holds a key, then
    as that text, redacted. Deeper than ``MAX_REDACT_DEPTH`` levels (beyond every input
    limit of the project) a subtree holding the key prefix is replaced whole.
    """
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if _depth >= MAX_REDACT_DEPTH:
        return REDACTED if _holds_mark(value) else value
    if isinstance(value, dict):
        # Copied only from the first change on: a value without a key (every step's
        # output, as a rule) costs no new dict at any level.
        out: dict[Any, Any] | None = None
        for k, v in value.items():
            nk = redact_text(k) if isinstance(k, str) else k
            nv = redact(v, _depth + 1)
            if out is None:
                if nk is k and nv is v:
                    continue
                out = {}
                for done_key, done in value.items():
                    if done_key is k:
                        break
                    out[done_key] = done
            out[nk] = nv
        return value if out is None else out
    if isinstance(value, list | tuple):
        items = None
        for i, v in enumerate(value):
            nv = redact(v, _depth + 1)
            if items is None:
                if nv is v:
                    continue
                items = list(value[:i])
            items.append(nv)
        if items is None:
            return value
        return items if isinstance(value, list) else tuple(items)
    text = str(value)
    return redact_text(text) if MARK in text else value


def hash_secret(key_id: str, secret: str) -> str:
    """SHA-256 (hex) of the secret, bound to its key id."""
    digest = hashlib.sha256(_HASH_TAG + key_id.encode("ascii") + b"\x00" + secret.encode("ascii"))
    return digest.hexdigest()


def verify(stored_hash: str, parsed: ParsedKey) -> bool:
    """Whether ``parsed`` matches ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(stored_hash, hash_secret(parsed.key_id, parsed.secret))
