"""``json_copy``: what a JSON round trip gives, and the values it refuses."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import pytest

from devskyy.core.jsonvalue import JsonLimitError, check_json_depth, check_json_text, json_copy
from devskyy.model.jsonlimits import bounded_loads


def test_json_copy_matches_a_json_round_trip_and_refuses_the_rest() -> None:
    class Color(StrEnum):
        RED = "red"

    value: dict[str, Any] = {
        "t": (1, 2.5, None, True),
        "nested": {"c": Color.RED, "l": [{"x": "y"}]},
    }
    copied = json_copy(value)
    assert copied == json.loads(json.dumps(value))
    assert type(copied["nested"]["c"]) is str
    assert copied["nested"]["l"] is not value["nested"]["l"]
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        json_copy({"s": {1}})
    with pytest.raises(TypeError, match=r"keys must be str, not int \(1\)"):
        json_copy({1: "x"})
    deep: Any = []
    for _ in range(150):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper than 100 levels"):
        json_copy(deep)


def test_check_json_text_counts_nesting_without_decoding() -> None:
    check_json_text("[" * 100 + "]" * 100)
    check_json_text(b'{"a": "' + b"[{" * 10_000 + b'"}')  # brackets in a string are text
    check_json_text('["\\"[[[["]')  # an escaped quote does not end the string
    for text in ("[" * 101 + "]" * 101, '{"a":' * 100_000, b"[" * 1_000_000):
        with pytest.raises(JsonLimitError) as caught:
            check_json_text(text)
        assert str(caught.value) == "JSON nested deeper than 100 levels"
    with pytest.raises(JsonLimitError, match=r"^JSON text is larger than the limit of 10 bytes$"):
        check_json_text("[" + "1," * 10 + "1]", max_bytes=10)
    check_json_text("[[1]]", max_depth=2)
    with pytest.raises(JsonLimitError):
        check_json_text("[[[1]]]", max_depth=2)


def test_check_json_depth_walks_without_recursion() -> None:
    deep: Any = 1
    for _ in range(100):
        deep = [deep]
    check_json_depth(deep)
    check_json_depth({"a": (1, {"b": deep[0]})}, max_depth=102)
    for _ in range(100_000):  # far past the recursion limit
        deep = {"k": deep}
    with pytest.raises(JsonLimitError, match=r"^JSON nested deeper than 100 levels$"):
        check_json_depth(deep)
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(JsonLimitError):
        check_json_depth(looped)


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        ("[" * 101 + "]" * 101, True),
        ("[" * 100 + "]" * 100, False),
        ('{"a":' * 101 + "1" + "}" * 101, True),
        ('["' + "[" * 500 + '"]', False),  # brackets inside a string do not count
        ('["\\"' + "[" * 500 + '"]', False),  # nor after an escaped quote
        ("[]" * 5000, False),  # many brackets, shallow
        ('["unterminated' + "[" * 200, True),  # not JSON: refused before decoding, never recursed
        # A string left open, full of escaped quotes: one pass (each quote was a new try).
        ("[" * 101 + '"' + '\\"' * 50_000, True),
        ('["' + '\\"' * 50_000 + "[" * 200, True),
    ],
)
def test_check_json_text_measures_nesting_not_bracket_count(text: str, deep: bool) -> None:
    if deep:
        with pytest.raises(JsonLimitError, match="JSON nested deeper than 100 levels"):
            check_json_text(text)
        with pytest.raises(JsonLimitError):
            bounded_loads(text)
    else:
        check_json_text(text)
        check_json_text(text.encode())
