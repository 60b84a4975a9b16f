"""API key format: shape, checksum, malformed reasons, hashing and constant-time checks."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pytest

from devskyy.core import keys
from devskyy.core.keys import Malformed, ParsedKey


def _key() -> keys.IssuedKey:
    return keys.make_key(bytes(range(8)), bytes(range(100, 124)))


def test_key_shape_and_parts() -> None:
    issued = _key()
    assert issued.key.startswith(f"dsk_{issued.key_id}_")
    assert len(issued.key) == keys.KEY_LEN == 56
    assert len(issued.key_id) == 12
    parsed = keys.parse_key(issued.key)
    assert isinstance(parsed, ParsedKey)
    assert parsed.key_id == issued.key_id
    assert len(parsed.secret) == 33
    # The secret holds all 192 random bits: decoding it gives the bytes back.
    value = 0
    for char in parsed.secret:
        value = value * 62 + keys.BASE62.index(char)
    assert value.to_bytes(24, "big") == bytes(range(100, 124))


def test_same_bytes_same_key_different_bytes_different_key() -> None:
    assert _key() == _key()
    other = keys.make_key(bytes(range(8)), bytes(range(101, 125)))
    assert other.key != _key().key
    assert other.key_id == _key().key_id


def test_random_keys_are_unique_and_valid() -> None:
    made = {keys.make_key(secrets.token_bytes(8), secrets.token_bytes(24)).key for _ in range(200)}
    assert len(made) == 200
    assert all(keys.looks_like_key(k) for k in made)


def test_wrong_number_of_random_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="need 8 and 24 random bytes"):
        keys.make_key(b"short", bytes(24))


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda k: "", "missing the 'dsk_' prefix"),
        (lambda k: "ghp_" + k[4:], "missing the 'dsk_' prefix"),
        (lambda k: k + "x", "wrong length (expected 56 characters)"),
        (lambda k: k[:-1], "wrong length (expected 56 characters)"),
        (lambda k: k[:20] + "!" + k[21:], "unexpected characters"),
        (lambda k: k[:4] + "A" + k[5:], "unexpected characters"),
        (lambda k: k[:-7] + ("a" if k[-7] != "a" else "b") + k[-6:], "checksum mismatch"),
        (lambda k: k[:-1] + ("a" if k[-1] != "a" else "b"), "checksum mismatch"),
    ],
)
def test_malformed_keys_say_why(mangle, reason) -> None:  # type: ignore[no-untyped-def]
    result = keys.parse_key(mangle(_key().key))
    assert result == Malformed(reason)


def test_every_single_character_typo_in_the_secret_is_caught_by_the_checksum() -> None:
    key = _key().key
    start = len("dsk_") + 12 + 1
    for index in range(start, len(key)):
        char = "Z" if key[index] != "Z" else "Y"
        assert keys.parse_key(key[:index] + char + key[index + 1 :]) == Malformed(
            "checksum mismatch"
        )


def test_scanner_finds_real_keys_and_ignores_noise() -> None:
    real = _key().key
    fake = real[:-1] + ("a" if real[-1] != "a" else "b")
    text = f"token={real}\nother={fake}\n"
    assert keys.find_keys(text) == [real]


def test_hash_is_sha256_bound_to_the_key_id() -> None:
    issued = _key()
    parsed = keys.parse_key(issued.key)
    assert isinstance(parsed, ParsedKey)
    expected = hashlib.sha256(
        b"devskyy.api-key.v1\x00" + issued.key_id.encode() + b"\x00" + parsed.secret.encode()
    ).hexdigest()
    assert issued.secret_hash == expected
    assert parsed.secret not in issued.secret_hash
    assert keys.verify(issued.secret_hash, parsed)
    assert not keys.verify(issued.secret_hash, ParsedKey("zzzzzzzzzzzz", parsed.secret))
    assert not keys.verify(issued.secret_hash, ParsedKey(parsed.key_id, parsed.secret[::-1]))


def test_verify_uses_constant_time_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", spy)
    issued = _key()
    parsed = keys.parse_key(issued.key)
    assert isinstance(parsed, ParsedKey)
    calls.clear()
    assert keys.verify(issued.secret_hash, parsed)
    assert calls == [(issued.secret_hash, issued.secret_hash)]
