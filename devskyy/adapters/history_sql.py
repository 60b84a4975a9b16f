"""The execution history's tables and queries (``history_store.SqlHistoryStore``), in
SQLAlchemy Core; imported on first use, so opening a system does not import SQLAlchemy."""

from __future__ import annotations

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
from devskyy.adapters.history_store import ExecutionRecord

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


def append(engine: Engine, record: ExecutionRecord) -> None:
    with engine.begin() as conn:
        conn.execute(insert(executions_table).values(record.as_dict()))
        if record.agents:
            conn.execute(
                insert(execution_agents_table),
                [{"task_id": record.task_id, "agent": a} for a in sorted(set(record.agents))],
            )


def recent(engine: Engine, limit: int = 100, agent: str | None = None) -> list[ExecutionRecord]:
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
    with engine.connect() as conn:
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


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(executions_table)).scalar_one())
