"""The orchestrator's execution history: one record per ``execute_task``, kept in the store.

``SqlHistoryStore`` writes two tables on the shared metadata: ``executions`` (the record,
results and errors as JSON) and ``execution_agents`` (which agents a task ran, so that an
agent's history is an indexed query). ``MemoryHistoryStore`` is the in-memory twin; one
contract test runs over both. Times come in with the record (only the clock reads time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Column,
    Double,
    Engine,
    ForeignKey,
    Integer,
    String,
    Table,
    func,
    insert,
    select,
)

from devskyy.adapters.db import metadata

executions_table = Table(
    "executions",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(32), nullable=False, unique=True),
    Column("task_type", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("started_at", Double, nullable=False),
    Column("duration", Double, nullable=False),
    Column("agents", JSON, nullable=False),
    Column("attempts", JSON, nullable=False),
    Column("results", JSON, nullable=False),
    Column("errors", JSON, nullable=False),
)

execution_agents_table = Table(
    "execution_agents",
    metadata,
    Column("task_id", String(32), ForeignKey("executions.task_id"), primary_key=True),
    Column("agent", String(63), primary_key=True, index=True),
)


@dataclass(frozen=True)
class ExecutionRecord:
    """What one task did: its agents in run order, their results, errors and attempts."""

    task_id: str
    task_type: str
    status: str
    priority: str
    started_at: float
    duration: float
    agents: tuple[str, ...] = ()
    attempts: dict[str, int] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "task_type": self.task_type,
            "status": self.status,
            "priority": self.priority,
            "started_at": self.started_at,
            "duration": self.duration,
            "agents": list(self.agents),
            "attempts": dict(self.attempts),
            "results": dict(self.results),
            "errors": dict(self.errors),
        }


class HistoryStore(Protocol):
    """Where execution records are kept, newest last."""

    def append(self, record: ExecutionRecord) -> None: ...

    def recent(self, limit: int = 100, agent: str | None = None) -> list[ExecutionRecord]:
        """The newest ``limit`` records (of one agent, if given), oldest first."""
        ...

    def count(self) -> int: ...


class MemoryHistoryStore:
    """The in-memory twin."""

    def __init__(self) -> None:
        self._records: list[ExecutionRecord] = []

    def append(self, record: ExecutionRecord) -> None:
        self._records.append(record)

    def recent(self, limit: int = 100, agent: str | None = None) -> list[ExecutionRecord]:
        found = [r for r in self._records if agent is None or agent in r.agents]
        return found[-limit:] if limit > 0 else []

    def count(self) -> int:
        return len(self._records)


class SqlHistoryStore:
    """Execution records in the SQL store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, record: ExecutionRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(executions_table).values(
                    task_id=record.task_id,
                    task_type=record.task_type,
                    status=record.status,
                    priority=record.priority,
                    started_at=record.started_at,
                    duration=record.duration,
                    agents=list(record.agents),
                    attempts=dict(record.attempts),
                    results=dict(record.results),
                    errors=dict(record.errors),
                )
            )
            if record.agents:
                conn.execute(
                    insert(execution_agents_table),
                    [{"task_id": record.task_id, "agent": a} for a in sorted(set(record.agents))],
                )

    def recent(self, limit: int = 100, agent: str | None = None) -> list[ExecutionRecord]:
        if limit <= 0:
            return []
        query = select(executions_table).order_by(executions_table.c.seq.desc()).limit(limit)
        if agent is not None:
            query = query.where(
                executions_table.c.task_id.in_(
                    select(execution_agents_table.c.task_id).where(
                        execution_agents_table.c.agent == agent
                    )
                )
            )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            ExecutionRecord(
                task_id=row["task_id"],
                task_type=row["task_type"],
                status=row["status"],
                priority=row["priority"],
                started_at=row["started_at"],
                duration=row["duration"],
                agents=tuple(row["agents"]),
                attempts=dict(row["attempts"]),
                results=dict(row["results"]),
                errors=dict(row["errors"]),
            )
            for row in reversed(rows)
        ]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(executions_table)).scalar_one()
            )
