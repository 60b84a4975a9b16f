"""The SQL run store's tables and its SQLAlchemy Core queries (``run_store.SqlRunStore``).

Imported on first use, not with ``run_store``: on SQLite a run is created and its steps
recorded through the stdlib driver (``run_store``), and `devskyy run` needs nothing here
(``adapters.sqlite_engine`` says why). Other databases write through ``CoreRuns`` too; every
store reads, claims and takes runs over through it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Double,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from devskyy.adapters.db import metadata
from devskyy.adapters.run_store import (
    _ACTIVE,
    _RAW_STEP_COLUMNS,
    _STEP_COLUMNS,
    _STEP_FIELDS,
    RunFenced,
    _add_steps,
    _decoded,
    _missing,
    _patch_values,
    _run_from_row,
    _step_values,
    fenced,
    plan_names,
    recorded,
    with_plan,
    write_error,
)
from devskyy.adapters.store_errors import corrupt_json, corrupt_row
from devskyy.errors import NotFound, StateError
from devskyy.model.jsonlimits import bounded_loads
from devskyy.model.runs import (
    RunRecord,
    RunStatus,
    RunWrite,
    StepEvent,
    StepRecord,
    StepStatus,
    with_row_events,
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
    # The run's plan: its step names in order (revision 0010); a step without a row in
    # run_steps is pending.
    Column("step_names", JSON(none_as_null=True), nullable=True),
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
    # The row stands for the step's end event (revision 0011; ``model.runs.ended_by_row``).
    Column("row_event", Boolean, nullable=False, server_default=false()),
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


# What a step row that stands for its end event gives that event (``row_event``).
_ROW_EVENT_COLUMNS = ("name", "status", "attempts", "started_at", "finished_at", "error", "reason")


def _plan_of(row: Any) -> list[str]:
    return plan_names(row["id"], row["step_names"])


def _refused(conn: Any, batch: RunWrite) -> NotFound | RunFenced:
    """Why a run's row did not take the write: no such run, or a newer generation."""
    row = conn.execute(select(runs_table.c.id).where(runs_table.c.id == batch.run_id))
    if row.first() is None or batch.generation is None:
        return _missing(batch.run_id)
    return fenced(batch.run_id, batch.generation)


class CoreRuns:
    """What ``SqlRunStore`` does through SQLAlchemy Core (see the module docstring)."""

    def __init__(self, engine: Engine, *, raw_reads: bool) -> None:
        self._engine = engine
        self._raw = raw_reads  # SQLite: read step rows through the stdlib driver
        # Compiled once and cached by SQLAlchemy: the hot path of every step. A step's row
        # is inserted when it first changes, updated after (the same upsert on SQLite and
        # PostgreSQL).
        dialect = {"postgresql": postgresql, "sqlite": sqlite}[engine.dialect.name]
        upsert = dialect.insert(run_steps_table)
        self._upsert_step = upsert.on_conflict_do_update(
            index_elements=["run_id", "name"],
            set_={name: upsert.excluded[name] for name in (*_STEP_FIELDS, "row_event")},
        )
        self._insert_event = insert(run_step_events_table)

    def create(self, run: RunRecord, row: dict[str, Any]) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(runs_table), row)
                steps = recorded(run.steps)
                if steps:
                    conn.execute(
                        self._upsert_step,
                        [
                            {
                                "run_id": run.id,
                                "name": s.name,
                                "position": i,
                                **_step_values(s),
                                "row_event": False,
                            }
                            for i, s in steps
                        ],
                    )
        except IntegrityError:
            raise StateError(f'run "{run.id}" already exists') from None

    def step_names(self, run_id: str) -> list[str] | None:
        """A run's plan as stored (None: no such run)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(runs_table.c.step_names).where(runs_table.c.id == run_id)
            ).first()
        return None if row is None else plan_names(run_id, row[0])

    def write(self, batch: RunWrite, plan: dict[str, int]) -> None:
        """Apply ``batch``; ``plan`` places the steps' first rows (``StepPlans``)."""
        try:
            self._write(batch, plan)
        except SQLAlchemyError as exc:
            raise write_error(self._engine, batch, exc) from exc

    def _write(self, batch: RunWrite, plan: dict[str, int]) -> None:
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
                    raise _refused(conn, batch)
            if batch.steps:
                conn.execute(
                    self._upsert_step,
                    [
                        {
                            "run_id": batch.run_id,
                            "name": s.name,
                            "position": plan[s.name],
                            **_step_values(s),
                            "row_event": s.name in batch.row_events,
                        }
                        for s in batch.steps
                    ],
                )
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

    def refused(self, batch: RunWrite) -> NotFound | RunFenced:
        """Why a run's row did not take a write: no such run, or a newer generation."""
        with self._engine.connect() as conn:
            return _refused(conn, batch)

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
            (runs_table, ("id",), "step_names", RunStatus),
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
        return [_run_from_row(row, with_plan(_plan_of(row), steps[row["id"]])) for row in rows]

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
            stored = [
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
            steps = run_steps_table
            ended = conn.execute(
                select(*(steps.c[name] for name in _ROW_EVENT_COLUMNS))
                .where(steps.c.run_id == run_id, steps.c.row_event)
                .order_by(steps.c.position)
            )
            return with_row_events(
                stored,
                [
                    StepRecord(
                        name,
                        StepStatus(status),
                        attempts,
                        started_at,
                        finished_at,
                        error=error,
                        reason=reason,
                    )
                    for name, status, attempts, started_at, finished_at, error, reason in ended
                ],
            )

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
