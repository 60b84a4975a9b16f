"""One redaction function (``core.keys.redact``) and the run store that applies it."""

from __future__ import annotations

from devskyy.adapters.run_store import MemoryRunStore
from devskyy.core.keys import MAX_REDACT_DEPTH, make_key, redact, redact_text
from devskyy.model.runs import (
    RunPatch,
    RunRecord,
    RunWrite,
    StepEvent,
    StepRecord,
    StepStatus,
)
from devskyy.runtime.security.redaction import RedactingRunStore

KEY = make_key(b"\x01" * 8, b"\x02" * 24).key
OTHER = make_key(b"\x03" * 8, b"\x04" * 24).key


def test_redact_text_replaces_only_well_formed_keys() -> None:
    assert redact_text(f"use {KEY} now") == "use [redacted] now"
    assert redact_text(f"{KEY},{OTHER}") == "[redacted],[redacted]"
    broken = KEY[:-1] + ("A" if KEY[-1] != "A" else "B")  # checksum no longer matches
    assert redact_text(f"x {broken}") == f"x {broken}"
    assert redact_text("dsk_ but no key") == "dsk_ but no key"


def test_redact_keeps_shape_and_identity_when_nothing_is_found() -> None:
    clean = {"a": [1, 2.5, None, True, ("t", "u")], "b": {"c": "text"}}
    assert redact(clean) is clean
    found = {"a": [1, {"deep": f"k={KEY}"}], KEY: "mapping key", "t": ("x", KEY)}
    assert redact(found) == {
        "a": [1, {"deep": "k=[redacted]"}],
        "[redacted]": "mapping key",
        "t": ("x", "[redacted]"),
    }
    assert found["a"][1] == {"deep": f"k={KEY}"}  # the input is not changed in place


def test_redact_copies_from_the_first_change_keeping_order_and_the_rest() -> None:
    """A key first, last or in the middle of a mapping or a sequence: the unchanged
    entries before it are kept in order, and unchanged parts keep their identity."""
    shared = {"same": [1, 2]}
    cases = {
        "first": {KEY: 1, "b": shared, "c": "x"},
        "middle": {"a": shared, "b": f"k {KEY}", "c": 3},
        "last": {"a": 1, "b": shared, "z": [0, ("t", KEY)]},
    }
    assert list(redact(cases["first"]).items()) == [
        ("[redacted]", 1),
        ("b", shared),
        ("c", "x"),
    ]
    middle = redact(cases["middle"])
    assert list(middle.items()) == [("a", shared), ("b", "k [redacted]"), ("c", 3)]
    assert middle["a"] is shared
    assert redact(cases["last"]) == {"a": 1, "b": shared, "z": [0, ("t", "[redacted]")]}
    assert redact([shared, 2, KEY, shared])[3] is shared
    assert redact(("a", KEY)) == ("a", "[redacted]")
    assert redact([KEY]) == ["[redacted]"]


def test_redact_is_bounded_in_depth() -> None:
    for depth in (MAX_REDACT_DEPTH + 50, 5000):  # 5000: past Python's recursion limit
        deep: object = KEY
        clean: object = "x"
        for _ in range(depth):
            deep, clean = [deep], [clean]
        out = redact(deep)
        while isinstance(out, list):
            out = out[0]
        assert out == "[redacted]"
        assert redact(clean) is clean


def test_the_run_store_never_keeps_a_key() -> None:
    inner = MemoryRunStore()
    store = RedactingRunStore(inner)
    store.create(RunRecord("r1", "wf", params={"token": KEY, "n": 1}, steps=(StepRecord("s"),)))
    store.write(
        RunWrite(
            "r1",
            patch=RunPatch(error=f"failed with {KEY}"),
            steps=(
                StepRecord(
                    "s",
                    StepStatus.SUCCEEDED,
                    output={"found": [f"line 3: API_KEY = '{KEY}'"]},
                    error=f"e {OTHER}",
                ),
            ),
            events=(StepEvent("s", StepStatus.FAILED, 1, 0.0, error=f"boom {KEY}"),),
        )
    )
    run = store.get("r1")
    text = repr((run.to_dict(), store.events("r1")))
    assert KEY not in text
    assert OTHER not in text
    assert run.params == {"token": "[redacted]", "n": 1}
    assert run.error == "failed with [redacted]"
    assert run.step("s").output == {"found": ["line 3: API_KEY = '[redacted]'"]}
    assert store.events("r1")[0].error == "boom [redacted]"
