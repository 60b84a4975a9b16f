"""The orchestrator's execution history: one record per ``execute_task``, kept in the store.

``SqlHistoryStore`` writes two tables on the shared metadata: ``executions`` (the record,
results and errors as JSON) and ``execution_agents`` (which agents a task ran, so that an
agent's history is an indexed query). ``MemoryHistoryStore`` is the in-memory twin; one
contract test runs over both. Times come in with the record (only the clock reads time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from devskyy.adapters.engine import Engine


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
    """Execution records in the SQL store (through SQLAlchemy Core in ``history_sql``,
    imported on first use: opening a system for `devskyy run` does not import it)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # history_sql is imported in each method: on first use, not with this module.
    def append(self, record: ExecutionRecord) -> None:
        from devskyy.adapters.history_sql import append  # noqa: PLC0415

        append(self.engine, record)

    def recent(self, limit: int = 100, agent: str | None = None) -> list[ExecutionRecord]:
        from devskyy.adapters.history_sql import recent  # noqa: PLC0415

        return recent(self.engine, limit, agent)

    def count(self) -> int:
        from devskyy.adapters.history_sql import count  # noqa: PLC0415

        return count(self.engine)
