"""``json_copy``: what a JSON round trip gives, and the values it refuses."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import pytest

from devskyy.core.jsonvalue import json_copy


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
