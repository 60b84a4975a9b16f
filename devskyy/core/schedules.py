"""Schedule decisions (pure): cron + time zone + what was recorded + now -> what to do.

A schedule (``spec.schedules[i]`` of a Workflow) names wall-clock times in its time zone.
Every matching wall-clock time fires once, at one UTC instant (docs/manifests.md):

* an ordinary time fires at its instant;
* a time the spring change skips (02:30 on the night 02:00 jumps to 03:00) fires at the
  change itself (03:00 CEST), as Vixie cron does: nothing is skipped;
* a time the autumn change repeats (02:30 CEST, then 02:30 CET) fires at its first
  occurrence only: nothing is doubled;
* several wall-clock times that land on one instant (02:00, 02:30 and 03:00 on the spring
  night) fire once.

The mapping from wall-clock times to instants is monotonic, so "due" means: an instant
after the last one recorded for the schedule and not after now. croniter iterates naive
wall-clock times (plain calendar arithmetic, no DST surprises); this module maps them.

Nothing here reads the clock or the store: the scheduler (``runtime.scheduler``) passes
``now`` and the last recorded due time in, and records and acts on the ``Decision``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from devskyy.core.timefmt import rfc3339
from devskyy.model.manifests import ConcurrencyPolicy, ScheduleSpec

NAMED = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""The ``@`` names a standard cron accepts (``@reboot`` has no meaning for a daemon)."""

MAX_PENDING = 100
"""Due times looked at in one decision (a daemon down for long): older ones are counted."""

_SLACK = timedelta(hours=3)  # more than any DST shift: where wall time can run backwards


class Status(StrEnum):
    """What was recorded for one due time."""

    ARMED = "armed"  # the first time a leader saw the schedule: due times start after it
    FIRED = "fired"  # a run was recorded and started
    MISSED = "missed"  # not started: past the deadline, or superseded by a later due time
    SKIPPED = "skipped"  # not started: suspended, or Forbid and the previous run still going
    REPLACED = "replaced"  # started after cancelling the previous run (Replace)


def cron_problem(cron: str) -> str | None:
    """Why ``cron`` is not a standard five-field expression or ``@`` name, or None."""
    from croniter import croniter  # noqa: PLC0415 - the watch extra; validation asks lazily

    text = cron.strip()
    if text.startswith("@"):
        if text.lower() not in NAMED:
            names = ", ".join(sorted(NAMED))
            return f"unknown cron name {cron!r} (expected one of {names})"
        return None
    fields = text.split()
    if len(fields) != 5:
        return (
            f"cron expression {cron!r} has {len(fields)} fields; expected 5 "
            "(minute hour day-of-month month day-of-week)"
        )
    try:
        croniter(text, datetime(2000, 1, 1)).get_next(datetime)  # 2000 is a leap year
    except (ValueError, KeyError) as exc:
        if type(exc).__name__ == "CroniterBadDateError":
            return f"cron expression {cron!r} never matches a date (such as 30 February)"
        return f"invalid cron expression {cron!r}: {exc}"
    return None


def zone_problem(name: str) -> str | None:
    """Why ``name`` is not an IANA time zone, or None."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name that is a folder of the database ("Europe") or too long a path.
        return f"unknown time zone {name!r} (expected an IANA name such as 'Europe/Paris' or 'UTC')"
    return None


def schedule_key(schedule: ScheduleSpec) -> str:
    """A stable name for a schedule: what it fires (cron, zone, params), not where it sits.

    Reordering ``spec.schedules`` keeps each schedule's record; changing what it fires
    starts a new one (armed at the change), so an edit never replays old due times.
    """
    body = json.dumps(
        [schedule.cron.strip(), schedule.timezone, schedule.params],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()[:12]


def _expression(cron: str) -> str:
    text = cron.strip()
    return NAMED.get(text.lower(), text)


def _instant(naive: datetime, zone: ZoneInfo) -> float:
    """The instant a matching wall-clock time fires at (see the module docstring)."""
    first = naive.replace(tzinfo=zone, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == naive:
        return utc.timestamp()  # exists (fold=0 is its first occurrence in an overlap)
    # In a spring gap: fold=0 read it with the offset before the change, fold=1 with the
    # one after, so the change lies between; find its second by bisection.
    low = int(naive.replace(tzinfo=zone, fold=1).timestamp())
    high = int(utc.timestamp())
    after = datetime.fromtimestamp(high, zone).utcoffset()
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == after:
            high = mid
        else:
            low = mid
    return float(high)


def _near_change(zone: ZoneInfo, at: float) -> bool:
    around = [datetime.fromtimestamp(at + d, zone).utcoffset() for d in (-10800, 0, 10800)]
    return len(set(around)) > 1


def due_times(
    cron: str, timezone: str, after: float, now: float, *, limit: int = MAX_PENDING
) -> tuple[list[float], bool]:
    """Due instants in ``(after, now]``, oldest first: at most the newest ``limit``.

    The flag is True when older due times were left out (more than ``limit``).
    """
    from croniter import croniter  # noqa: PLC0415

    zone = ZoneInfo(timezone)
    start = datetime.fromtimestamp(now, zone).replace(tzinfo=None)
    if _near_change(zone, now):
        start += _SLACK  # wall times after now's may land before now (autumn overlap)
    it = croniter(_expression(cron), start + timedelta(seconds=1))
    found: list[float] = []
    while True:
        instant = _instant(it.get_prev(datetime), zone)
        if instant <= after:
            return found[::-1], False
        if instant > now or (found and instant == found[-1]):
            continue
        if len(found) == limit:
            return found[::-1], True
        found.append(instant)


def next_fire(cron: str, timezone: str, now: float) -> float:
    """The first instant after ``now`` at which the schedule fires."""
    from croniter import croniter  # noqa: PLC0415

    zone = ZoneInfo(timezone)
    start = datetime.fromtimestamp(now, zone).replace(tzinfo=None)
    if _near_change(zone, now):
        start -= _SLACK
    it = croniter(_expression(cron), start)
    while True:
        instant = _instant(it.get_next(datetime), zone)
        if instant > now:
            return instant


@dataclass(frozen=True)
class Entry:
    """One due time and what to record for it."""

    due: float
    status: Status
    reason: str = ""


@dataclass(frozen=True)
class Decision:
    """What one schedule does now: entries to record (oldest first), and whether the last
    one starts a run (``fire``), after cancelling the running ones (``cancel``)."""

    entries: tuple[Entry, ...] = ()
    fire: Entry | None = None
    cancel: tuple[str, ...] = ()
    dropped: bool = False  # more due times than MAX_PENDING: the oldest are not listed
    arm_at: float | None = None  # never recorded before: record this instant as the start


@dataclass(frozen=True)
class Pending:
    """What the store says about a schedule: its last recorded due time and the runs of
    its earlier fires that are still going."""

    last: float | None
    active: tuple[str, ...] = field(default_factory=tuple)


def decide(schedule: ScheduleSpec, pending: Pending, now: float) -> Decision:
    """What to record and start for ``schedule`` at ``now`` (Kubernetes CronJob rules).

    A schedule never recorded is armed at ``now``: due times start after it (a new
    schedule does not replay the past). Of the due times since the last record, those
    later than ``startingDeadlineSeconds`` are missed; of the rest only the newest starts
    a run (the others are missed, superseded by it), unless the schedule is suspended (the
    newest is recorded as skipped, so a resumed schedule does not replay its suspension) or
    ``Forbid`` finds a run of it still going (skipped). ``Replace`` cancels those runs.
    """
    if pending.last is None:
        return Decision(arm_at=now)
    times, dropped = due_times(schedule.cron, schedule.timezone, pending.last, now)
    if not times:
        return Decision()
    if schedule.suspend:
        note = "suspended" if len(times) == 1 else f"suspended ({len(times)} due times)"
        return Decision((Entry(times[-1], Status.SKIPPED, note),), dropped=dropped)
    deadline = schedule.starting_deadline_seconds
    late = [t for t in times if deadline is not None and now - t > deadline]
    timely = [t for t in times if t not in late]
    entries = [Entry(t, Status.MISSED, f"not started within {deadline}s") for t in late]
    if not timely:
        return Decision(tuple(entries), dropped=dropped)
    newest = timely[-1]
    superseded = f"superseded by the due time {_iso(newest)}"
    entries += [Entry(t, Status.MISSED, superseded) for t in timely[:-1]]
    policy = schedule.concurrency_policy
    if pending.active and policy is ConcurrencyPolicy.FORBID:
        running = ", ".join(pending.active)
        entries.append(Entry(newest, Status.SKIPPED, f"Forbid: run {running} still running"))
        return Decision(tuple(entries), dropped=dropped)
    if pending.active and policy is ConcurrencyPolicy.REPLACE:
        running = ", ".join(pending.active)
        fire = Entry(newest, Status.REPLACED, f"Replace: cancelled run {running}")
        return Decision(tuple(entries), fire, pending.active, dropped)
    return Decision(tuple(entries), Entry(newest, Status.FIRED), dropped=dropped)


def _iso(instant: float) -> str:
    return rfc3339(instant) or ""


__all__ = [
    "MAX_PENDING",
    "NAMED",
    "Decision",
    "Entry",
    "Pending",
    "Status",
    "cron_problem",
    "decide",
    "due_times",
    "next_fire",
    "schedule_key",
    "zone_problem",
]
