"""Pure schedule decisions (core/schedules): due times across DST, policies, bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devskyy.core.schedules import (
    Decision,
    Entry,
    Pending,
    Status,
    cron_problem,
    decide,
    due_times,
    next_fire,
    schedule_key,
    zone_problem,
)
from devskyy.model.manifests import ConcurrencyPolicy, ScheduleSpec

PARIS = "Europe/Paris"


def at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def utc(times: list[float]) -> list[str]:
    return [datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%MZ") for t in times]


def test_spring_forward_a_skipped_wall_time_fires_at_the_change_once() -> None:
    # 2026-03-29: Paris jumps from 02:00 CET to 03:00 CEST (01:00Z); 02:30 never happens.
    times, dropped = due_times(
        "30 2 * * *", PARIS, at("2026-03-28T12:00Z"), at("2026-03-30T12:00Z")
    )
    assert utc(times) == ["2026-03-29T01:00Z", "2026-03-30T00:30Z"]
    assert not dropped


def test_autumn_back_a_repeated_wall_time_fires_at_its_first_occurrence_only() -> None:
    # 2026-10-25: 03:00 CEST goes back to 02:00 CET (01:00Z); 02:30 happens twice.
    times, _ = due_times("30 2 * * *", PARIS, at("2026-10-24T12:00Z"), at("2026-10-26T12:00Z"))
    assert utc(times) == ["2026-10-25T00:30Z", "2026-10-26T01:30Z"]


def test_every_half_hour_across_spring_forward_is_every_real_half_hour_once() -> None:
    times, _ = due_times("*/30 * * * *", PARIS, at("2026-03-28T23:45Z"), at("2026-03-29T02:00Z"))
    assert utc(times) == [
        "2026-03-29T00:00Z",  # 01:00 CET
        "2026-03-29T00:30Z",  # 01:30 CET
        "2026-03-29T01:00Z",  # 02:00 and 02:30 (skipped) and 03:00 CEST: one instant, once
        "2026-03-29T01:30Z",
        "2026-03-29T02:00Z",
    ]


def test_hourly_across_autumn_back_fires_each_wall_hour_once() -> None:
    times, _ = due_times("@hourly", PARIS, at("2026-10-24T23:30Z"), at("2026-10-25T03:00Z"))
    # 02:00 CEST (00:00Z) fires; 02:00 CET (01:00Z) is the same wall time again: not doubled.
    assert utc(times) == ["2026-10-25T00:00Z", "2026-10-25T02:00Z", "2026-10-25T03:00Z"]


def test_due_times_in_the_repeated_hour_do_not_replay_what_fired_in_the_first() -> None:
    # The last record is 00:45Z (02:45 CEST); at 01:50Z (02:50 CET) nothing new is due.
    times, _ = due_times("*/15 * * * *", PARIS, at("2026-10-25T00:45Z"), at("2026-10-25T01:50Z"))
    assert utc(times) == []
    times, _ = due_times("*/15 * * * *", PARIS, at("2026-10-25T00:45Z"), at("2026-10-25T02:00Z"))
    assert utc(times) == ["2026-10-25T02:00Z"]


def test_next_fire_is_in_the_zone_and_strictly_after_now() -> None:
    assert utc([next_fire("30 2 * * *", PARIS, at("2026-03-29T00:40Z"))]) == ["2026-03-29T01:00Z"]
    assert utc([next_fire("30 2 * * *", PARIS, at("2026-10-25T00:40Z"))]) == ["2026-10-26T01:30Z"]
    assert utc([next_fire("0 9 * * 1", "UTC", at("2026-12-07T09:00Z"))]) == ["2026-12-14T09:00Z"]


def test_a_long_outage_lists_only_the_newest_due_times() -> None:
    times, dropped = due_times("* * * * *", "UTC", at("2026-01-01T00:00Z"), at("2026-01-02T00:00Z"))
    assert len(times) == 100
    assert dropped
    assert utc(times[-1:]) == ["2026-01-02T00:00Z"]


def spec(**fields: object) -> ScheduleSpec:
    return ScheduleSpec.model_validate({"cron": "*/10 * * * *", **fields})


def test_a_new_schedule_is_armed_and_does_not_replay_the_past() -> None:
    assert decide(spec(), Pending(None), at("2026-01-01T00:05Z")) == Decision(
        arm_at=at("2026-01-01T00:05Z")
    )


def test_only_the_newest_due_time_fires_the_rest_are_missed() -> None:
    schedule = spec(startingDeadlineSeconds=900)
    decision = decide(schedule, Pending(at("2026-01-01T00:00Z")), at("2026-01-01T00:41Z"))
    assert decision.entries == (
        Entry(at("2026-01-01T00:10Z"), Status.MISSED, "not started within 900s"),
        Entry(at("2026-01-01T00:20Z"), Status.MISSED, "not started within 900s"),
        Entry(
            at("2026-01-01T00:30Z"),
            Status.MISSED,
            "superseded by the due time 2026-01-01T00:40:00.000Z",
        ),
    )
    assert decision.fire == Entry(at("2026-01-01T00:40Z"), Status.FIRED)


def test_everything_past_the_deadline_is_missed_and_nothing_fires() -> None:
    schedule = spec(startingDeadlineSeconds=60)
    decision = decide(schedule, Pending(at("2026-01-01T00:00Z")), at("2026-01-01T00:12Z"))
    assert decision.fire is None
    assert decision.entries == (
        Entry(at("2026-01-01T00:10Z"), Status.MISSED, "not started within 60s"),
    )


def test_forbid_skips_while_a_run_is_going_replace_cancels_it_allow_runs_both() -> None:
    pending = Pending(at("2026-01-01T00:00Z"), ("r1",))
    now = at("2026-01-01T00:10Z")
    forbid = decide(spec(concurrencyPolicy="Forbid"), pending, now)
    assert forbid.fire is None
    assert forbid.entries == (Entry(now, Status.SKIPPED, "Forbid: run r1 still running"),)
    replace = decide(spec(concurrencyPolicy="Replace"), pending, now)
    assert replace.fire == Entry(now, Status.REPLACED, "Replace: cancelled run r1")
    assert replace.cancel == ("r1",)
    allow = decide(spec(concurrencyPolicy=ConcurrencyPolicy.ALLOW), pending, now)
    assert allow.fire == Entry(now, Status.FIRED)
    assert allow.cancel == ()


def test_a_suspended_schedule_records_its_due_times_as_skipped_in_one_entry() -> None:
    decision = decide(spec(suspend=True), Pending(at("2026-01-01T00:00Z")), at("2026-01-01T00:35Z"))
    assert decision.fire is None
    assert decision.entries == (
        Entry(at("2026-01-01T00:30Z"), Status.SKIPPED, "suspended (3 due times)"),
    )


def test_nothing_due_is_an_empty_decision() -> None:
    assert decide(spec(), Pending(at("2026-01-01T00:00Z")), at("2026-01-01T00:09Z")) == Decision()


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        (
            "61 * * * *",
            "invalid cron expression '61 * * * *': [61 * * * *] is not acceptable, out of range",
        ),
        (
            "* * * * * *",
            "cron expression '* * * * * *' has 6 fields; expected 5 "
            "(minute hour day-of-month month day-of-week)",
        ),
        (
            "@reboot",
            "unknown cron name '@reboot' (expected one of "
            "@annually, @daily, @hourly, @midnight, @monthly, @weekly, @yearly)",
        ),
        ("0 0 30 2 *", "cron expression '0 0 30 2 *' never matches a date (such as 30 February)"),
        ("*/15 * * * *", None),
        ("@HOURLY", None),
        ("0 9 * * mon-fri", None),
    ],
)
def test_cron_problems(cron: str, message: str | None) -> None:
    assert cron_problem(cron) == message


def test_zone_problems() -> None:
    assert zone_problem("Europe/Paris") is None
    assert zone_problem("Mars/Olympus") == (
        "unknown time zone 'Mars/Olympus' (expected an IANA name such as 'Europe/Paris' or 'UTC')"
    )
    assert zone_problem("../etc/passwd") is not None
    # A folder of the zone database is no zone (ZoneInfo raises IsADirectoryError).
    assert zone_problem("Europe") == (
        "unknown time zone 'Europe' (expected an IANA name such as 'Europe/Paris' or 'UTC')"
    )


def test_the_key_follows_what_fires_not_the_position() -> None:
    a = spec(params={"x": 1})
    assert schedule_key(a) == schedule_key(spec(params={"x": 1}, suspend=True))
    assert schedule_key(a) != schedule_key(spec(params={"x": 2}))
    assert schedule_key(a) != schedule_key(spec(params={"x": 1}, timezone=PARIS))
