"""``core.jsontext.json_encoder``: the text of ``json.dumps`` with the same options."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devskyy.model.jsontext import json_encoder

VALUES: list[Any] = [
    {"i": 5},
    {"b": [1, 2.5, None, True, False, 'é\n\t"q"', "\u2028"], "a": {"z": 1, "y": (1, 2)}},
    {"k": float("nan"), "l": float("inf"), "m": -0.0, "n": 10**30},
    'a "quoted" string',
    5,
    None,
    [],
    {},
]


@pytest.mark.parametrize("sort_keys", [False, True])
@pytest.mark.parametrize("separators", [(", ", ": "), (",", ":")])
@pytest.mark.parametrize("value", VALUES)
def test_same_text_as_json_dumps(value: Any, sort_keys: bool, separators: tuple[str, str]) -> None:
    encode = json_encoder(sort_keys=sort_keys, separators=separators)
    assert encode(value) == json.dumps(value, sort_keys=sort_keys, separators=separators)


def test_reused_across_calls_and_refuses_what_json_dumps_refuses() -> None:
    encode = json_encoder()
    assert [encode({"n": n}) for n in range(3)] == ['{"n": 0}', '{"n": 1}', '{"n": 2}']
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        encode({"s": {1}})
