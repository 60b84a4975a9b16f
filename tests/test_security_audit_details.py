"""Audit details are stored as JSON: mapping keys become text, API keys used as keys too.

The chain hashes an event's details before the store writes them and ``audit --verify``
hashes what it reads back, so details with keys that are not strings (an ``int``, ``None``,
a tuple) must be hashed as the JSON they are stored as: before, a mix of ``int`` and
``str`` keys raised ``TypeError`` while sorting, a tuple key raised ``TypeError`` in the
encoder, and ``{9: .., 10: ..}`` made a chain that no longer verified once read back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from security_helpers import shipped_roles

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.db import open_engine
from devskyy.cli import main
from devskyy.core.keys import make_key
from devskyy.model.security import AuditEvent, EventType, Outcome
from devskyy.runtime.security import SecurityManager

KEY = make_key(b"\x01" * 8, b"\x02" * 24).key
OTHER = make_key(b"\x03" * 8, b"\x04" * 24).key


def _append(state_url: str, clock: FakeClock, *details: dict[Any, Any]) -> None:
    """Append one event per ``details`` through the security manager's audit writer."""
    engine = open_engine(state_url)
    try:
        sm = SecurityManager(engine, clock, shipped_roles)
        for item in details:
            event = AuditEvent(
                clock.now(), "tester", EventType.KEY_CREATED, "keys/x", Outcome.SUCCESS, item
            )
            sm.audit.record(event, urgent=True)
            clock.advance(1)
        sm.flush()
    finally:
        engine.dispose()


def _cli(state_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--state", state_url, *args], catch_exceptions=False)
    return result.exit_code, result.output


def _stored_details(state_url: str) -> list[dict[str, Any]]:
    code, out = _cli(state_url, "audit", "-o", "json", "--limit", "1000")
    assert code == 0, out
    return [event["details"] for event in json.loads(out)]


def _verified(state_url: str, events: int) -> None:
    code, out = _cli(state_url, "audit", "--verify")
    assert (code, out.split(", head ")[0]) == (0, f"audit log intact: {events} event(s)")


@pytest.mark.parametrize(
    ("details", "stored"),
    [
        ({1: "a", "b": 2}, {"1": "a", "b": 2}),  # int and str: could not be sorted
        ({9: "a", 10: "b"}, {"9": "a", "10": "b"}),  # sorted 9 < 10, read back "10" < "9"
        ({"outer": {10: [1], 9: (2, 3)}}, {"outer": {"10": [1], "9": [2, 3]}}),
        ({None: 1, True: 2, 1.5: 3}, {"null": 1, "true": 2, "1.5": 3}),  # as json.dumps
        ({("a", 1): "tuple"}, {"('a', 1)": "tuple"}),  # the encoder refused a tuple key
        ({1: "int", "1": "str"}, {"1": "str", "1#2": "int"}),  # both kept, none lost
    ],
)
def test_details_with_keys_that_are_not_text_are_stored_as_json_and_verify(
    state_url: str, clock: FakeClock, details: dict[Any, Any], stored: dict[str, Any]
) -> None:
    _append(state_url, clock, {"before": 1}, details, {"after": 1})
    assert _stored_details(state_url) == [{"before": 1}, stored, {"after": 1}]
    _verified(state_url, 3)


def test_an_api_key_used_as_a_mapping_key_is_redacted(
    state_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    _append(
        state_url,
        clock,
        {KEY: "as a key", "nested": {(OTHER, 2): "in a tuple key"}},
        {KEY: 1, OTHER: 2, "[redacted]": 3},
    )
    assert _stored_details(state_url) == [
        {"[redacted]": "as a key", "nested": {"('[redacted]', 2)": "in a tuple key"}},
        {"[redacted]": 3, "[redacted]#2": 1, "[redacted]#3": 2},
    ]
    _verified(state_url, 2)
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("state.db*"))
    for key in (KEY, OTHER):
        assert key.encode() not in stored
        assert key.split("_")[2].encode() not in stored  # not even the secret part
