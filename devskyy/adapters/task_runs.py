"""Background orchestrator tasks started over the HTTP API, kept in the store.

``POST /api/agents/orchestrator/execute`` answers 202 with an id at once; this table
records the request, the status (pending → running → succeeded | failed | cancelled),
the result, and the owning process, so ``GET /api/runs/{id}`` answers from the store
and a task survives a server restart (a running task whose process is gone reads as
``interrupted`` and may be started again from its recorded request).

``TaskRuns`` is the Protocol; ``SqlTaskRuns`` and the in-memory twin ``MemoryTaskRuns``
pass one contract test (``tests/test_task_runs.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

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


_FIELDS = frozenset({"status", "owner", "finished_at", "result", "error"})


class TaskRuns(Protocol):
    """Where API task runs are kept (``SqlTaskRuns``; ``MemoryTaskRuns`` is the twin)."""

    def create(self, run: TaskRun) -> None:
        """Record a new task run; ``StateError``-free: ids are fresh."""
        ...

    def update(self, run_id: str, **values: Any) -> None:
        """Change some of ``status``, ``owner``, ``finished_at``, ``result``, ``error``."""
        ...

    def find(self, run_id: str) -> TaskRun | None:
        """The task run, or None."""
        ...

    def get(self, run_id: str) -> TaskRun:
        """The task run; ``NotFound`` when there is none."""
        ...


class MemoryTaskRuns:
    """Task runs in a dict (tests, and a runtime without a SQL store)."""

    def __init__(self) -> None:
        self._runs: dict[str, TaskRun] = {}

    def create(self, run: TaskRun) -> None:
        if run.id in self._runs:
            raise ValueError(f'task run "{run.id}" exists')
        self._runs[run.id] = replace(run, finished_at=None, result=None, error=None)

    def update(self, run_id: str, **values: Any) -> None:
        unknown = set(values) - _FIELDS
        if unknown:
            raise TypeError(f"unknown task run field(s): {', '.join(sorted(unknown))}")
        if run_id in self._runs:  # as an UPDATE of no row: nothing happens
            self._runs[run_id] = replace(self._runs[run_id], **values)

    def find(self, run_id: str) -> TaskRun | None:
        return self._runs.get(run_id)

    def get(self, run_id: str) -> TaskRun:
        found = self.find(run_id)
        if found is None:
            raise NotFound(f'no task run "{run_id}"')
        return found


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
        unknown = set(values) - _FIELDS
        if unknown:
            raise TypeError(f"unknown task run field(s): {', '.join(sorted(unknown))}")
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
