"""Durable workflow runs: the ``RunStore`` seam, its SQL store and its in-memory twin.

Three tables on the shared metadata: ``runs`` (one row per run), ``run_steps`` (the
latest state of each step) and ``run_step_events`` (every attempt start, end, retry and
skip, in order: what ``DagProgress.restore`` rebuilds a run from). The workflow engine
writes through ``write(RunWrite)``: one transaction per batch, so a batch of finished
steps costs one commit (see ``devskyy.runtime.workflows`` for when the engine commits).
On SQLite the two hot statements go straight through the stdlib driver; other databases
use SQLAlchemy Core.

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

import json
import os
import socket
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Column,
    Double,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from devskyy.adapters import failpoints
from devskyy.adapters.daemon_lock import alive
from devskyy.adapters.db import (
    corrupt_json,
    corrupt_row,
    engine_url,
    metadata,
    store_error_message,
)
from devskyy.adapters.dbapi import raw_transaction
from devskyy.errors import NotFound, StateError
from devskyy.model.jsonlimits import bounded_loads
from devskyy.model.runs import (
    RunPatch,
    RunRecord,
    RunStatus,
    RunWrite,
    StepEvent,
    StepRecord,
    StepStatus,
)

runs_table = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("workflow", String(63), nullable=False, index=True),
    Column("params", JSON(none_as_null=True), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", Double, nullable=False, index=True),
    Column("started_at", Double, nullable=True),
    Column("finished_at", Double, nullable=True),
    Column("error", Text, nullable=True),
    Column("owner", String(255), nullable=True),
    Column("heartbeat_at", Double, nullable=True),
    Column("generation", Integer, nullable=False, server_default="0"),
)

run_steps_table = Table(
    "run_steps",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("started_at", Double, nullable=True),
    Column("finished_at", Double, nullable=True),
    Column("duration", Double, nullable=True),
    Column("output", JSON(none_as_null=True), nullable=True),
    Column("error", Text, nullable=True),
    Column("error_type", String(255), nullable=True),
    Column("reason", Text, nullable=True),
)

run_step_events_table = Table(
    "run_step_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step", String(63), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", Double, nullable=False),
    Column("error", Text, nullable=True),
    Column("retry_at", Double, nullable=True),
    Column("started_at", Double, nullable=True),
    Column("worker", String(255), nullable=True),
    Index("ix_run_step_events_run", "run_id", "id"),
)


class RunFenced(StateError):
    """The run was taken over: its writer no longer holds the owner generation."""


def fenced(run_id: str, generation: int) -> RunFenced:
    return RunFenced(
        f'run "{run_id}" was taken over by another owner (this one held generation '
        f"{generation}): its write is refused"
    )


_ACTIVE = (RunStatus.RUNNING.value, RunStatus.PENDING.value)


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

    def create(self, run: RunRecord) -> RunRecord:
        if run.id in self._runs:
            raise StateError(f'run "{run.id}" already exists')
        self._runs[run.id] = replace(run, params=_json_copy(run.params), steps=())
        self._steps[run.id] = {s.name: s for s in run.steps}
        self._events[run.id] = []
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
        return list(self._events[run_id])

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
        step.status,  # a StrEnum: bound as its text, without the slow .value property
        step.attempts,
        step.started_at,
        step.finished_at,
        step.duration,
        None if step.output is None else json.dumps(step.output),
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
    """Runs in SQL (SQLite by default, PostgreSQL through the same URL)."""

    def __init__(self, engine: Engine, *, sqlite_fast_path: bool = True) -> None:
        self._engine = engine
        steps = run_steps_table
        # Compiled once and cached by SQLAlchemy: the hot path of every step.
        self._update_step = (
            update(steps)
            .where(steps.c.run_id == bindparam("k_run"), steps.c.name == bindparam("k_name"))
            .values({name: bindparam(f"v_{name}") for name in _STEP_FIELDS})
        )
        self._insert_event = insert(run_step_events_table)
        # SQLite (the default store) takes the hot path straight through the stdlib driver:
        # SQLAlchemy's per-statement overhead was most of a step's cost. Other databases
        # go through SQLAlchemy Core, which handles their drivers' types.
        self._raw = sqlite_fast_path and engine.dialect.name == "sqlite"
        sets = ", ".join(f"{name} = ?" for name in _STEP_FIELDS)
        self._raw_update_step = f"UPDATE run_steps SET {sets} WHERE run_id = ? AND name = ?"  # noqa: S608
        self._raw_insert_event = (
            "INSERT INTO run_step_events "
            "(run_id, step, status, attempt, at, error, retry_at, started_at, worker) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )

    def create(self, run: RunRecord) -> RunRecord:
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
        }
        if self._raw:
            self._create_sqlite(run, row)
            failpoints.hit("run.created")
            return run
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(runs_table), row)
                if run.steps:
                    conn.execute(
                        insert(run_steps_table),
                        [
                            {"run_id": run.id, "name": s.name, "position": i, **_step_values(s)}
                            for i, s in enumerate(run.steps)
                        ],
                    )
        except IntegrityError:
            raise StateError(f'run "{run.id}" already exists') from None
        failpoints.hit("run.created")
        return run

    def write(self, batch: RunWrite) -> None:
        try:
            if self._raw:
                self._write_sqlite(batch)
            else:
                self._write_core(batch)
        except (sqlite3.Error, SQLAlchemyError) as exc:
            # The one error type the CLI and API map: the store could not take the write
            # (said without the SQL statement).
            detail = store_error_message(exc, engine_url(self._engine)) or str(exc)
            raise StateError(f'run "{batch.run_id}": {detail}') from exc
        for step in batch.steps:
            if step.status is StepStatus.SUCCEEDED:  # counted per step, not per write
                failpoints.hit("run.step_recorded")

    def _write_core(self, batch: RunWrite) -> None:
        with self._engine.begin() as conn:
            values = {} if batch.patch is None else _patch_values(batch.patch)
            if values or batch.generation is not None:
                # The fence and the patch are one statement: it locks the run's row, so a
                # take-over commits wholly before or after this write.
                query = update(runs_table).where(runs_table.c.id == batch.run_id)
                if batch.generation is not None:
                    query = query.where(runs_table.c.generation == batch.generation)
                result = conn.execute(
                    query.values(values or {"generation": runs_table.c.generation})
                )
                if result.rowcount == 0:
                    raise self._refused(conn, batch)
            if batch.steps:
                result = conn.execute(
                    self._update_step,
                    [
                        {
                            "k_run": batch.run_id,
                            "k_name": s.name,
                            **{f"v_{k}": v for k, v in _step_values(s).items()},
                        }
                        for s in batch.steps
                    ],
                )
                if result.rowcount != len(batch.steps):
                    self._unknown_steps(conn, batch)
            if batch.events:
                conn.execute(
                    self._insert_event,
                    [
                        {
                            "run_id": batch.run_id,
                            "step": e.step,
                            "status": e.status.value,
                            "attempt": e.attempt,
                            "at": e.at,
                            "error": e.error,
                            "retry_at": e.retry_at,
                            "started_at": e.started_at,
                            "worker": e.worker,
                        }
                        for e in batch.events
                    ],
                )

    def _create_sqlite(self, run: RunRecord, row: dict[str, Any]) -> None:
        """``create`` for SQLite through the stdlib driver (a 1,000-step run is one insert)."""
        row = {**row, "params": json.dumps(run.params)}
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        step_columns = ("run_id", "name", "position", *_STEP_FIELDS)
        step_sql = (
            f"INSERT INTO run_steps ({', '.join(step_columns)}) "  # noqa: S608 - fixed names
            f"VALUES ({', '.join('?' for _ in step_columns)})"
        )
        try:
            with raw_transaction(self._engine) as cursor:
                cursor.execute(
                    f"INSERT INTO runs ({columns}) VALUES ({marks})",  # noqa: S608 - fixed names
                    list(row.values()),
                )
                cursor.executemany(
                    step_sql,
                    [(run.id, s.name, i, *_raw_step_row(s)) for i, s in enumerate(run.steps)],
                )
        except sqlite3.IntegrityError:
            raise StateError(f'run "{run.id}" already exists') from None

    def _write_sqlite(self, batch: RunWrite) -> None:
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
                    with self._engine.connect() as conn:
                        raise self._refused(conn, batch)
            if batch.steps:
                cursor.executemany(
                    self._raw_update_step,
                    [(*_raw_step_row(s), batch.run_id, s.name) for s in batch.steps],
                )
                if cursor.rowcount != len(batch.steps):
                    with self._engine.connect() as conn:
                        self._unknown_steps(conn, batch)
            if batch.events:
                cursor.executemany(
                    self._raw_insert_event,
                    [
                        (
                            batch.run_id,
                            e.step,
                            e.status,  # a StrEnum: bound as its text
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

    @staticmethod
    def _refused(conn: Any, batch: RunWrite) -> NotFound | RunFenced:
        """Why a run's row did not take the write: no such run, or a newer generation."""
        row = conn.execute(select(runs_table.c.id).where(runs_table.c.id == batch.run_id))
        if row.first() is None or batch.generation is None:
            return _missing(batch.run_id)
        return fenced(batch.run_id, batch.generation)

    @staticmethod
    def _unknown_steps(conn: Any, batch: RunWrite) -> None:
        rows = conn.execute(
            select(run_steps_table.c.name).where(run_steps_table.c.run_id == batch.run_id)
        )
        known = {row[0] for row in rows}
        if not known:
            raise _missing(batch.run_id)
        unknown = sorted({s.name for s in batch.steps} - known)
        if unknown:
            raise StateError(f'run "{batch.run_id}" has no step {unknown[0]!r}')

    def get(self, run_id: str) -> RunRecord:
        runs = self._load(select(runs_table).where(runs_table.c.id == run_id))
        if not runs:
            raise _missing(run_id)
        return runs[0]

    def list_runs(self, *, workflow: str | None = None, limit: int = 50) -> list[RunRecord]:
        query = select(runs_table)
        if workflow is not None:
            query = query.where(runs_table.c.workflow == workflow)
        query = query.order_by(runs_table.c.created_at.desc(), runs_table.c.id.desc())
        return self._load(query.limit(limit))

    def count_by_status(self) -> dict[str, int]:
        query = select(runs_table.c.status, func.count()).group_by(runs_table.c.status)
        with self._engine.connect() as conn:
            return {str(status): int(count) for status, count in conn.execute(query)}

    def _load(self, query: Any) -> list[RunRecord]:
        try:
            return self._load_rows(query)
        except (ValueError, TypeError, RecursionError):
            # A stored row that does not decode: name it (table and key) instead of
            # surfacing a JSONDecodeError from inside SQLAlchemy's row processing.
            problem = self._first_corrupt_row()
            if problem is None:
                raise
            raise problem from None

    def _first_corrupt_row(self) -> StateError | None:
        checks = (
            (runs_table, ("id",), "params", RunStatus),
            (run_steps_table, ("run_id", "name"), "output", StepStatus),
        )
        with self._engine.connect() as conn:
            for table, keys, column, statuses in checks:
                raw = type_coerce(table.c[column], Text).label("raw")
                query = select(*(table.c[k] for k in keys), raw, table.c.status)
                for row in conn.execute(query).mappings():
                    key = {k: row[k] for k in keys}
                    problem = (
                        None
                        if row["raw"] is None
                        else corrupt_json(
                            row["raw"], table.name, key, column, "restore from a backup"
                        )
                    )
                    if problem is not None:
                        return problem
                    if row["status"] not in {s.value for s in statuses}:
                        return corrupt_row(
                            table.name,
                            key,
                            f"has an unknown status {row['status']!r}",
                            "restore from a backup",
                        )
        return None

    def _load_rows(self, query: Any) -> list[RunRecord]:
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
            ids = [row["id"] for row in rows]
            steps: dict[str, list[StepRecord]] = {run_id: [] for run_id in ids}
            if ids and self._raw:
                self._raw_steps(conn, ids, steps)
            elif ids:
                table = run_steps_table
                step_rows = conn.execute(
                    select(*(table.c[name] for name in _STEP_COLUMNS))
                    .where(table.c.run_id.in_(ids))
                    .order_by(table.c.run_id, table.c.position)
                )
                _add_steps(step_rows, steps, _decoded)  # the JSON column decoded the output
        return [_run_from_row(row, tuple(steps[row["id"]])) for row in rows]

    def _raw_steps(self, conn: Any, ids: list[str], steps: dict[str, list[StepRecord]]) -> None:
        """The steps of runs ``ids`` through the stdlib driver (SQLite): a 1,000-step run
        is read back when it starts, and SQLAlchemy's row mappings were most of that."""
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(
                f"SELECT {_RAW_STEP_COLUMNS} FROM run_steps "  # noqa: S608 - fixed names
                f"WHERE run_id IN ({', '.join('?' for _ in ids)}) ORDER BY run_id, position",
                ids,
            )
            _add_steps(cursor, steps, bounded_loads)  # the output is JSON text here
        finally:
            cursor.close()

    def events(self, run_id: str) -> list[StepEvent]:
        table = run_step_events_table
        with self._engine.connect() as conn:
            exists = conn.execute(select(runs_table.c.id).where(runs_table.c.id == run_id))
            if exists.first() is None:
                raise _missing(run_id)
            rows = conn.execute(
                select(table).where(table.c.run_id == run_id).order_by(table.c.id)
            ).mappings()
            return [
                StepEvent(
                    step=r["step"],
                    status=StepStatus(r["status"]),
                    attempt=r["attempt"],
                    at=r["at"],
                    error=r["error"],
                    retry_at=r["retry_at"],
                    started_at=r["started_at"],
                    worker=r["worker"],
                )
                for r in rows
            ]

    def claim(
        self, run_id: str, *, expected_owner: str | None, owner: str, now: float
    ) -> int | None:
        owner_col = runs_table.c.owner
        match = owner_col.is_(None) if expected_owner is None else owner_col == expected_owner
        with self._engine.begin() as conn:
            result = conn.execute(
                update(runs_table)
                .where(runs_table.c.id == run_id, match)
                .values(  # running again: no longer finished
                    owner=owner,
                    heartbeat_at=now,
                    status=RunStatus.RUNNING.value,
                    finished_at=None,
                    error=None,
                    generation=runs_table.c.generation + 1,
                )
                .returning(runs_table.c.generation)
            )
            row = result.first()
            if row is not None:
                return int(row[0])
        self.get(run_id)  # NotFound when the run does not exist at all
        return None

    def take_over(self, run_id: str, *, generation: int, owner: str, now: float) -> int | None:
        runs = runs_table
        with self._engine.begin() as conn:
            row = conn.execute(
                update(runs)
                .where(
                    runs.c.id == run_id,
                    runs.c.generation == generation,
                    runs.c.status.in_(_ACTIVE),
                )
                .values(owner=owner, heartbeat_at=now, generation=generation + 1)
                .returning(runs.c.generation)
            ).first()
        return None if row is None else int(row[0])

    def heartbeat(self, owner: str, now: float) -> int:
        runs = runs_table
        with self._engine.begin() as conn:
            result = conn.execute(
                update(runs)
                .where(runs.c.owner == owner, runs.c.status.in_(_ACTIVE))
                .values(heartbeat_at=now)
            )
            return int(result.rowcount)

    def active(self) -> list[RunRecord]:
        runs = runs_table
        query = select(runs).where(runs.c.status.in_(_ACTIVE)).order_by(runs.c.created_at)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_run_from_row(row, ()) for row in rows]
