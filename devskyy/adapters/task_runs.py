"""Background orchestrator tasks started over the HTTP API, kept in the store.

``POST /api/agents/orchestrator/execute`` answers 202 with an id at once; this table
records the request, the status (pending → running → succeeded | failed | cancelled),
the result, and the owning process, so ``GET /api/runs/{id}`` answers from the store
and a task survives a server restart (a running task whose process is gone reads as
``interrupted`` and may be started again from its recorded request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Column, Double, Engine, String, Table, insert, select, update

from devskyy.adapters.db import metadata
from devskyy.errors import NotFound

task_runs_table = Table(
    "api_task_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("task_type", String(255), nullable=False),
    Column("request", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("owner", String(255), nullable=True),
    Column("created_at", Double, nullable=False),
    Column("finished_at", Double, nullable=True),
    Column("result", JSON, nullable=True),
    Column("error", String(2000), nullable=True),
)


@dataclass(frozen=True)
class TaskRun:
    """One API task: its request, where it is, and its result."""

    id: str
    task_type: str
    request: dict[str, Any]
    status: str
    owner: str | None
    created_at: float
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


class SqlTaskRuns:
    """Task runs in the SQL store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, run: TaskRun) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(task_runs_table).values(
                    id=run.id,
                    task_type=run.task_type,
                    request=run.request,
                    status=run.status,
                    owner=run.owner,
                    created_at=run.created_at,
                )
            )

    def update(self, run_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(task_runs_table).where(task_runs_table.c.id == run_id).values(**values)
            )

    def find(self, run_id: str) -> TaskRun | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(task_runs_table).where(task_runs_table.c.id == run_id))
                .mappings()
                .first()
            )
        if row is None:
            return None
        return TaskRun(
            id=row["id"],
            task_type=row["task_type"],
            request=dict(row["request"]),
            status=row["status"],
            owner=row["owner"],
            created_at=row["created_at"],
            finished_at=row["finished_at"],
            result=None if row["result"] is None else dict(row["result"]),
            error=row["error"],
        )

    def get(self, run_id: str) -> TaskRun:
        found = self.find(run_id)
        if found is None:
            raise NotFound(f'no task run "{run_id}"')
        return found
