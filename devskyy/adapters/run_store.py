"""Durable workflow runs: the ``RunStore`` seam, its SQL store and its in-memory twin.

Three tables on the shared metadata (declared in ``run_sql``): ``runs`` (one row per run,
with its plan: the names of its steps in order, ``step_names``), ``run_steps`` (the latest
state of each step that has changed: a step gets its row when it first starts or is
skipped, and readers show a step without one as pending) and ``run_step_events`` (every
attempt start, end, retry and skip, in order: what ``DagProgress.restore`` rebuilds a run
from). A step's end that its row states exactly is no event row: the row, marked
``row_event``, stands for it and ``events`` puts it back (``model.runs.with_row_events``).
Creating a run writes its ``runs`` row alone, however many steps it has.
The workflow engine writes through ``write(RunWrite)``: one transaction per batch, so a
batch of finished steps costs one commit (see ``devskyy.runtime.workflows`` for when the
engine commits). On SQLite, creating a run and writing its steps go straight through the
stdlib driver; everything else goes through SQLAlchemy Core (``run_sql``, imported on
first use, so this module does not import SQLAlchemy).

``owner`` is ``host:pid`` of the process running a run; ``owner_alive`` tells whether
that process still exists (on this host), which is how a ``running`` run whose process
died is recognised as interrupted. ``generation`` fences the owners of a run: every claim
and take-over raises it, and a ``RunWrite`` that carries a generation is applied only if
the run still has it, checked in the same transaction as the write (an ``UPDATE ... WHERE
generation = ?`` that also locks the row on PostgreSQL); otherwise ``RunFenced``, and the
stale driver stops. Owners renew ``heartbeat_at`` of all their runs in one statement
(``heartbeat``); ``active`` lists the running and pending runs a survivor may take over
(``take_over``, conditional on the generation it saw). One contract test
(``tests/test_run_store.py``) runs over both implementations.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from devskyy.adapters import failpoints
from devskyy.adapters.db import engine_url
from devskyy.adapters.dbapi import raw_transaction
from devskyy.adapters.processes import alive
from devskyy.adapters.sqlite_engine import backend
from devskyy.adapters.store_errors import corrupt_row, store_error_message
from devskyy.errors import NotFound, StateError
from devskyy.model.jsonlimits import bounded_loads
from devskyy.model.jsontext import json_encoder
from devskyy.model.runs import (
    RunPatch,
    RunRecord,
    RunStatus,
    RunWrite,
    StepEvent,
    StepRecord,
    StepStatus,
    with_row_events,
)

if TYPE_CHECKING:
    from devskyy.adapters.engine import Engine
    from devskyy.adapters.run_sql import CoreRuns


class RunFenced(StateError):
    """The run was taken over: its writer no longer holds the owner generation."""


def fenced(run_id: str, generation: int) -> RunFenced:
    return RunFenced(
        f'run "{run_id}" was taken over by another owner (this one held generation '
        f"{generation}): its write is refused"
    )


_ACTIVE = (RunStatus.RUNNING.value, RunStatus.PENDING.value)
RESTORE = "restore from a backup"


class RunStore(Protocol):
    """Where runs are kept. Every method is one transaction."""

    def create(self, run: RunRecord) -> RunRecord:
        """Insert a new run and its steps; ``StateError`` if the id exists. Returns the run
        as stored (what ``get`` reads back), so its creator need not read it back."""
        ...

    def write(self, batch: RunWrite) -> None:
        """Apply a run patch, step states and events together; ``NotFound`` if no run."""
        ...

    def get(self, run_id: str) -> RunRecord:
        """One run with its steps; ``NotFound`` if none has that id."""
        ...

    def list_runs(self, *, workflow: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The newest runs first (optionally of one workflow), with their steps."""
        ...

    def count_by_status(self) -> dict[str, int]:
        """How many runs are in each recorded status (for metrics)."""
        ...

    def events(self, run_id: str) -> list[StepEvent]:
        """Every step event of a run, in the order written."""
        ...

    def claim(
        self, run_id: str, *, expected_owner: str | None, owner: str, now: float
    ) -> int | None:
        """Take a run (for resume) if its owner is still ``expected_owner``: the new
        generation, or None when another process took it first."""
        ...

    def take_over(self, run_id: str, *, generation: int, owner: str, now: float) -> int | None:
        """Take a running or pending run if it still has ``generation``: the new one, or None."""
        ...

    def heartbeat(self, owner: str, now: float) -> int:
        """Renew ``heartbeat_at`` of every running or pending run ``owner`` holds; how many."""
        ...

    def active(self) -> list[RunRecord]:
        """Every running or pending run (without steps), oldest first."""
        ...


def process_owner() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None) -> bool | None:
    """Whether the owning process exists: None when unknown (no owner, another host)."""
    if not owner or ":" not in owner:
        return None
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    # A zombie (killed, not yet reaped by its parent) still answers kill(pid, 0): it is
    # dead all the same, and its runs must not wait for its parent.
    return alive(int(pid_text))


def _missing(run_id: str) -> NotFound:
    return NotFound(f'run "{run_id}" not found')


def _json_copy(value: Any) -> Any:
    """A JSON round trip: what a SQL store would give back (and a check it is JSON)."""
    return json.loads(json.dumps(value))


class MemoryRunStore:
    """The in-memory twin of ``SqlRunStore`` (same contract, no durability)."""

    def __init__(self) -> None:
        self._runs: dict[str, RunRecord] = {}
        self._steps: dict[str, dict[str, StepRecord]] = {}
        self._events: dict[str, list[StepEvent]] = {}
        self._row_events: dict[str, set[str]] = {}  # steps whose record stands for their end

    def create(self, run: RunRecord) -> RunRecord:
        if run.id in self._runs:
            raise StateError(f'run "{run.id}" already exists')
        self._runs[run.id] = replace(run, params=_json_copy(run.params), steps=())
        self._steps[run.id] = {s.name: s for s in run.steps}
        self._events[run.id] = []
        self._row_events[run.id] = set()
        return run

    def write(self, batch: RunWrite) -> None:
        run = self._runs.get(batch.run_id)
        if run is None:
            raise _missing(batch.run_id)
        steps = self._steps[batch.run_id]
        unknown = sorted(s.name for s in batch.steps if s.name not in steps)
        if unknown:
            raise StateError(f'run "{run.id}" has no step {unknown[0]!r}')
        if batch.generation is not None and run.generation != batch.generation:
            raise fenced(batch.run_id, batch.generation)
        if batch.patch is not None:
            self._runs[batch.run_id] = batch.patch.apply(run)
        for step in batch.steps:
            output = _json_copy(step.output) if step.output is not None else None
            steps[step.name] = replace(step, output=output)
        self._events[batch.run_id].extend(batch.events)
        ended = self._row_events[batch.run_id]
        ended.difference_update(s.name for s in batch.steps)
        ended.update(batch.row_events)

    def get(self, run_id: str) -> RunRecord:
        run = self._runs.get(run_id)
        if run is None:
            raise _missing(run_id)
        return replace(run, steps=tuple(self._steps[run_id].values()))

    def list_runs(self, *, workflow: str | None = None, limit: int = 50) -> list[RunRecord]:
        order = {run_id: i for i, run_id in enumerate(self._runs)}
        runs = [r for r in self._runs.values() if workflow is None or r.workflow == workflow]
        runs.sort(key=lambda r: (r.created_at, order[r.id]), reverse=True)
        return [self.get(r.id) for r in runs[:limit]]

    def count_by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for run in self._runs.values():
            counts[run.status.value] = counts.get(run.status.value, 0) + 1
        return counts

    def events(self, run_id: str) -> list[StepEvent]:
        if run_id not in self._events:
            raise _missing(run_id)
        ended = self._row_events[run_id]
        rows = [s for name, s in self._steps[run_id].items() if name in ended]
        return with_row_events(list(self._events[run_id]), rows)

    def claim(
        self, run_id: str, *, expected_owner: str | None, owner: str, now: float
    ) -> int | None:
        run = self.get(run_id)
        if run.owner != expected_owner:
            return None
        generation = run.generation + 1
        self._runs[run_id] = replace(  # running again: no longer finished
            self._runs[run_id],
            owner=owner,
            heartbeat_at=now,
            status=RunStatus.RUNNING,
            finished_at=None,
            error=None,
            generation=generation,
        )
        return generation

    def take_over(self, run_id: str, *, generation: int, owner: str, now: float) -> int | None:
        run = self.get(run_id)
        if run.generation != generation or run.status.value not in _ACTIVE:
            return None
        self._runs[run_id] = replace(
            self._runs[run_id], owner=owner, heartbeat_at=now, generation=generation + 1
        )
        return generation + 1

    def heartbeat(self, owner: str, now: float) -> int:
        mine = [r for r in self._runs.values() if r.owner == owner and r.status.value in _ACTIVE]
        for run in mine:
            self._runs[run.id] = replace(run, heartbeat_at=now)
        return len(mine)

    def active(self) -> list[RunRecord]:
        runs = [r for r in self._runs.values() if r.status.value in _ACTIVE]
        return sorted(runs, key=lambda r: r.created_at)


_STEP_FIELDS = (
    "status",
    "attempts",
    "started_at",
    "finished_at",
    "duration",
    "output",
    "error",
    "error_type",
    "reason",
)

_STEP_COLUMNS = ("run_id", "name", *_STEP_FIELDS)
_RAW_STEP_COLUMNS = ", ".join(_STEP_COLUMNS)
# The stdlib driver's statements (SQLite), their column names fixed here. A step's row is
# inserted when it first changes and updated after (an upsert, one statement per step).
# The row's last column, ``row_event``: whether it stands for the step's end event
# (``RunWrite.row_events``).
_WRITTEN_FIELDS = (*_STEP_FIELDS, "row_event")
_RAW_UPSERT_STEP = (
    f"INSERT INTO run_steps (run_id, name, position, {', '.join(_WRITTEN_FIELDS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' for _ in range(3 + len(_WRITTEN_FIELDS)))}) "
    "ON CONFLICT (run_id, name) DO UPDATE SET "
    f"{', '.join(f'{name} = excluded.{name}' for name in _WRITTEN_FIELDS)}"
)
_RAW_INSERT_EVENT = (
    "INSERT INTO run_step_events "
    "(run_id, step, status, attempt, at, error, retry_at, started_at, worker) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A step's output as stored: checked JSON (never circular), ``json.dumps``'s text.
_output_text = json_encoder()
_STEP_STATUS = {s.value: s for s in StepStatus}  # a dict lookup, not an Enum call per row


def _step_values(step: StepRecord) -> dict[str, Any]:
    return {
        "status": step.status.value,
        "attempts": step.attempts,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "duration": step.duration,
        "output": step.output,
        "error": step.error,
        "error_type": step.error_type,
        "reason": step.reason,
    }


def _raw_step_row(step: StepRecord) -> tuple[Any, ...]:
    """A step's values in ``_STEP_FIELDS`` order, output as JSON text (the stdlib driver's row)."""
    return (
        # Its text as a plain str: the driver binds a str subclass (a StrEnum) through its
        # adapter lookup, and the Enum's .value is a property (both slow, per row).
        step.status._value_,
        step.attempts,
        step.started_at,
        step.finished_at,
        step.duration,
        None if step.output is None else _output_text(step.output),
        step.error,
        step.error_type,
        step.reason,
    )


def _patch_values(patch: RunPatch) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in ("status", "started_at", "finished_at", "error", "owner", "heartbeat_at"):
        value = getattr(patch, name)
        if value is not None:
            values[name] = value.value if isinstance(value, RunStatus) else value
    return values


def recorded(steps: Iterable[StepRecord]) -> list[tuple[int, StepRecord]]:
    """The steps of a new run that need a row (with their positions): those that are not
    simply pending (``StepRecord(name)``: a step without a row reads back as that)."""
    return [(i, s) for i, s in enumerate(steps) if not _blank(s)]


def _blank(s: StepRecord) -> bool:
    """``s == StepRecord(s.name)``, field by field (a fifth of the cost; once per step)."""
    return (
        s.status is StepStatus.PENDING
        and not s.attempts
        and s.started_at is None
        and s.finished_at is None
        and s.duration is None
        and s.output is None
        and s.error is None
        and s.error_type is None
        and s.reason is None
    )


def with_plan(names: Sequence[str], rows: list[StepRecord]) -> tuple[StepRecord, ...]:
    """A run's steps in plan order: the recorded ones, the others pending."""
    by_name = {s.name: s for s in rows}
    return tuple([by_name.get(name) or StepRecord(name) for name in names])


def plan_names(run_id: str, names: object) -> list[str]:
    """A stored plan (``runs.step_names``) as the list of names it must be (every run has
    one: its creation writes it, revision 0010 gave older runs theirs)."""
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise corrupt_row(
            "runs", {"id": run_id}, "has a step_names that is not a list of names", RESTORE
        )
    return names


class StepPlans:
    """The plans (step name -> position) of the runs a store wrote last, read once each.

    A run's plan is fixed when it is created, so a writer looks it up once per run, not
    once per write: it places a step's first row and refuses a step the run does not
    have. At most ``keep`` plans are kept (the oldest go first).
    """

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        # Each step of the upkeep is one C call (safe for the API's worker threads).
        self._plans: OrderedDict[str, dict[str, int]] = OrderedDict()

    def remember(self, run_id: str, names: Iterable[str]) -> dict[str, int]:
        plan = {name: i for i, name in enumerate(names)}
        self._plans[run_id] = plan
        self._plans.move_to_end(run_id)
        while len(self._plans) > self.keep:
            try:
                self._plans.popitem(last=False)
            except KeyError:  # another thread emptied it meanwhile
                break
        return plan

    def positions(
        self, batch: RunWrite, read: Callable[[str], Sequence[str] | None]
    ) -> dict[str, int]:
        """The plan of ``batch``'s run (``read`` gives its step names, None when there is
        no such run): ``NotFound`` without the run, ``StateError`` for a step not in it."""
        plan = self._plans.get(batch.run_id)
        if plan is None:
            names = read(batch.run_id)
            if names is None:
                raise _missing(batch.run_id)
            plan = self.remember(batch.run_id, names)
        for step in batch.steps:
            if step.name not in plan:
                raise StateError(f'run "{batch.run_id}" has no step {step.name!r}')
        return plan


def _run_from_row(row: Any, steps: tuple[StepRecord, ...]) -> RunRecord:
    """The run of a ``runs`` row (a mapping) with the steps read for it."""
    return RunRecord(
        id=row["id"],
        workflow=row["workflow"],
        params=row["params"],
        status=RunStatus(row["status"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        owner=row["owner"],
        heartbeat_at=row["heartbeat_at"],
        steps=steps,
        generation=row["generation"],
    )


def _decoded(value: Any) -> Any:
    """A stored output that its column type already decoded."""
    return value


def _add_steps(
    rows: Iterable[Sequence[Any]],
    steps: dict[str, list[StepRecord]],
    decode: Callable[[Any], Any],
) -> None:
    """Append the step of each ``run_steps`` row (columns in ``_STEP_COLUMNS`` order) to
    its run's list; ``decode`` turns a stored output that is not NULL into its value."""
    for run_id, name, status, attempts, started, finished, duration, *rest in rows:
        output, error, error_type, reason = rest
        steps[run_id].append(
            StepRecord(
                name=name,
                # An unknown status: StepStatus's ValueError (a corrupt row).
                status=_STEP_STATUS.get(status) or StepStatus(status),
                attempts=attempts,
                started_at=started,
                finished_at=finished,
                duration=duration,
                output=None if output is None else decode(output),
                error=error,
                error_type=error_type,
                reason=reason,
            )
        )


class SqlRunStore:
    """Runs in SQL (SQLite by default, PostgreSQL through the same URL).

    On SQLite a run is created and its steps are recorded through the stdlib driver
    (SQLAlchemy's per-statement overhead was most of a step's cost, and `devskyy run`
    then never imports it: ``adapters.sqlite_engine``); everything else, and every write
    on other databases, goes through SQLAlchemy Core in ``run_sql``, imported on first use.
    """

    def __init__(self, engine: Engine, *, sqlite_fast_path: bool = True) -> None:
        self._engine = engine
        self._raw = sqlite_fast_path and backend(engine) == "sqlite"
        self._plans = StepPlans()

    @functools.cached_property
    def _sql(self) -> CoreRuns:
        from devskyy.adapters.run_sql import CoreRuns  # noqa: PLC0415 - see the class docstring

        return CoreRuns(self._engine, raw_reads=self._raw)

    def create(self, run: RunRecord) -> RunRecord:
        names = [s.name for s in run.steps]
        row = {
            "id": run.id,
            "workflow": run.workflow,
            "params": run.params,
            "status": run.status.value,
            "created_at": run.created_at,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "error": run.error,
            "owner": run.owner,
            "heartbeat_at": run.heartbeat_at,
            "generation": run.generation,
            "step_names": names,
        }
        if self._raw:
            self._create_sqlite(run, row)
        else:
            self._sql.create(run, row)
        self._plans.remember(run.id, names)
        failpoints.hit("run.created")
        return run

    def write(self, batch: RunWrite) -> None:
        # Where a step's first row goes, and a refusal for a step the run does not have:
        # the run's plan, read once per run (it never changes).
        plan = self._plans.positions(batch, self._step_names) if batch.steps else {}
        if self._raw:
            try:
                self._write_sqlite(batch, plan)
            except sqlite3.Error as exc:
                raise write_error(self._engine, batch, exc) from exc
        else:
            self._sql.write(batch, plan)
        if failpoints.armed("run.step_recorded"):
            for step in batch.steps:
                if step.status is StepStatus.SUCCEEDED:  # counted per step, not per write
                    failpoints.hit("run.step_recorded")

    def _step_names(self, run_id: str) -> Sequence[str] | None:
        """The run's plan as stored (None: no such run)."""
        if not self._raw:
            return self._sql.step_names(run_id)
        with raw_transaction(self._engine, begin=None) as cursor:
            row = cursor.execute("SELECT step_names FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        return plan_names(run_id, None if row[0] is None else bounded_loads(row[0]))

    def _create_sqlite(self, run: RunRecord, row: dict[str, Any]) -> None:
        """``create`` for SQLite through the stdlib driver: the run's row (and a row for
        each step that is more than pending, which a new run does not have)."""
        row = {**row, "params": json.dumps(run.params), "step_names": json.dumps(row["step_names"])}
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        try:
            with raw_transaction(self._engine) as cursor:
                cursor.execute(
                    f"INSERT INTO runs ({columns}) VALUES ({marks})",  # noqa: S608 - fixed names
                    list(row.values()),
                )
                cursor.executemany(
                    _RAW_UPSERT_STEP,
                    [(run.id, s.name, i, *_raw_step_row(s), 0) for i, s in recorded(run.steps)],
                )
        except sqlite3.IntegrityError:
            raise StateError(f'run "{run.id}" already exists') from None

    def _write_sqlite(self, batch: RunWrite, plan: dict[str, int]) -> None:
        """``write`` for SQLite through the stdlib driver: one transaction, executemany."""
        with raw_transaction(self._engine) as cursor:
            values = {} if batch.patch is None else _patch_values(batch.patch)
            if values or batch.generation is not None:
                sets = ", ".join(f"{name} = ?" for name in values) or "generation = generation"
                fence = "" if batch.generation is None else " AND generation = ?"
                cursor.execute(
                    f"UPDATE runs SET {sets} WHERE id = ?{fence}",  # noqa: S608 - fixed names
                    [*values.values(), batch.run_id]
                    + ([] if batch.generation is None else [batch.generation]),
                )
                if cursor.rowcount == 0:
                    raise self._sql.refused(batch)
            if batch.steps:
                run_id, ended = batch.run_id, batch.row_events
                cursor.executemany(
                    _RAW_UPSERT_STEP,
                    [
                        (
                            run_id,
                            s.name,
                            plan[s.name],
                            *_raw_step_row(s),
                            1 if s.name in ended else 0,
                        )
                        for s in batch.steps
                    ],
                )
            if batch.events:
                cursor.executemany(
                    _RAW_INSERT_EVENT,
                    [
                        (
                            batch.run_id,
                            e.step,
                            e.status._value_,  # plain text (see _raw_step_row)
                            e.attempt,
                            e.at,
                            e.error,
                            e.retry_at,
                            e.started_at,
                            e.worker,
                        )
                        for e in batch.events
                    ],
                )

    def get(self, run_id: str) -> RunRecord:
        return self._sql.get(run_id)

    def list_runs(self, *, workflow: str | None = None, limit: int = 50) -> list[RunRecord]:
        return self._sql.list_runs(workflow=workflow, limit=limit)

    def count_by_status(self) -> dict[str, int]:
        return self._sql.count_by_status()

    def events(self, run_id: str) -> list[StepEvent]:
        return self._sql.events(run_id)

    def claim(
        self, run_id: str, *, expected_owner: str | None, owner: str, now: float
    ) -> int | None:
        return self._sql.claim(run_id, expected_owner=expected_owner, owner=owner, now=now)

    def take_over(self, run_id: str, *, generation: int, owner: str, now: float) -> int | None:
        return self._sql.take_over(run_id, generation=generation, owner=owner, now=now)

    def heartbeat(self, owner: str, now: float) -> int:
        return self._sql.heartbeat(owner, now)

    def active(self) -> list[RunRecord]:
        return self._sql.active()


def write_error(engine: Engine, batch: RunWrite, exc: BaseException) -> StateError:
    """The one error the CLI and API map for a write the store could not take (said
    without the SQL statement)."""
    detail = store_error_message(exc, engine_url(engine)) or str(exc)
    return StateError(f'run "{batch.run_id}": {detail}')
