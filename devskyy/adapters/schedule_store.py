"""Where schedule fires are recorded: the ``schedule_fires`` table (and an in-memory twin).

One row per (workflow, schedule key, due time): armed, fired, missed, skipped or replaced
(``core.schedules.Status``). The row of a fire is committed BEFORE its run starts, in a
transaction that first checks the daemon's lease (``DaemonLease.fence``), and the primary
key makes a second record of the same due time fail: so a restarted daemon, or a standby
that took over, finds the due time recorded and never fires it again, and a deposed leader
cannot record at all. A fire carries the id its run will have, so a crash between the
record and the run is repaired by creating the run (``runtime.scheduler``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from sqlalchemy import Column, Engine, Float, String, Table, Text, func, select
from sqlalchemy.exc import IntegrityError

from devskyy.adapters.db import metadata

fires = Table(
    "schedule_fires",
    metadata,
    Column("workflow", String(64), primary_key=True),
    Column("schedule", String(16), primary_key=True),
    Column("due_at", Float, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("run_id", String(64), nullable=True),
    Column("reason", Text, nullable=False, default=""),
    Column("cron", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("recorded_at", Float, nullable=False),
)


@dataclass(frozen=True)
class Fire:
    """One recorded due time of one schedule (its fields are the table's columns)."""

    workflow: str
    schedule: str  # core.schedules.schedule_key
    due_at: float
    status: str
    run_id: str | None
    reason: str
    cron: str
    timezone: str
    recorded_at: float


Fence = Any  # a callable taking the open connection (DaemonLease.fence), or None


class ScheduleStore(Protocol):
    """Record and read schedule fires."""

    def last_due(self, workflow: str, schedule: str) -> float | None: ...

    def record(self, rows: list[Fire], fence: Fence = None) -> bool: ...

    def recent(self, workflow: str, schedule: str, limit: int = 20) -> list[Fire]: ...

    def list_fires(self, *, workflow: str | None = None, limit: int = 100) -> list[Fire]: ...


class MemoryScheduleStore:
    """The in-memory twin (tests)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, float], Fire] = {}

    def last_due(self, workflow: str, schedule: str) -> float | None:
        dues = [k[2] for k in self.rows if k[:2] == (workflow, schedule)]
        return max(dues) if dues else None

    def record(self, rows: list[Fire], fence: Fence = None) -> bool:
        if fence is not None:
            fence(None)
        keys = [(r.workflow, r.schedule, r.due_at) for r in rows]
        if len(set(keys)) != len(keys) or any(k in self.rows for k in keys):
            return False
        self.rows.update(zip(keys, rows, strict=True))
        return True

    def recent(self, workflow: str, schedule: str, limit: int = 20) -> list[Fire]:
        mine = [r for k, r in self.rows.items() if k[:2] == (workflow, schedule)]
        return sorted(mine, key=lambda r: r.due_at, reverse=True)[:limit]

    def list_fires(self, *, workflow: str | None = None, limit: int = 100) -> list[Fire]:
        rows = [r for r in self.rows.values() if workflow is None or r.workflow == workflow]
        return sorted(rows, key=lambda r: (r.due_at, r.workflow), reverse=True)[:limit]


class SqlScheduleStore:
    """``schedule_fires`` in the SQL store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def last_due(self, workflow: str, schedule: str) -> float | None:
        query = select(func.max(fires.c.due_at)).where(
            fires.c.workflow == workflow, fires.c.schedule == schedule
        )
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else float(value)

    def record(self, rows: list[Fire], fence: Fence = None) -> bool:
        """Insert ``rows`` in one transaction after ``fence``; False if any was recorded."""
        if not rows:
            return True
        try:
            with self.engine.begin() as conn:
                if fence is not None:
                    fence(conn)  # LeaseLost if another daemon leads now
                conn.execute(fires.insert(), [asdict(r) for r in rows])
        except IntegrityError:
            return False  # another leader recorded this due time first
        return True

    def recent(self, workflow: str, schedule: str, limit: int = 20) -> list[Fire]:
        query = (
            select(fires)
            .where(fires.c.workflow == workflow, fires.c.schedule == schedule)
            .order_by(fires.c.due_at.desc())
            .limit(limit)
        )
        return self._load(query)

    def list_fires(self, *, workflow: str | None = None, limit: int = 100) -> list[Fire]:
        query = select(fires).order_by(fires.c.due_at.desc(), fires.c.workflow.desc())
        if workflow is not None:
            query = query.where(fires.c.workflow == workflow)
        return self._load(query.limit(limit))

    def _load(self, query: Any) -> list[Fire]:
        with self.engine.connect() as conn:
            return [
                Fire(
                    workflow=r.workflow,
                    schedule=r.schedule,
                    due_at=float(r.due_at),
                    status=r.status,
                    run_id=r.run_id,
                    reason=r.reason,
                    cron=r.cron,
                    timezone=r.timezone,
                    recorded_at=float(r.recorded_at),
                )
                for r in conn.execute(query)
            ]


__all__ = ["Fire", "MemoryScheduleStore", "ScheduleStore", "SqlScheduleStore", "fires"]
