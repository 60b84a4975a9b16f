"""Read-only queries the dashboard needs that the stores' own APIs answer too slowly.

The runs list of ``/ui/runs`` shows one line per run with its step counts. The run
store's ``list_runs`` loads every step (outputs included) of every run it returns and
filters only by workflow; here one query filters by workflow and stored status and
counts finished steps in SQL, so a page of 50 runs out of thousands stays cheap.
Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, Integer, case, func, select

from devskyy.adapters.run_sql import run_steps_table, runs_table
from devskyy.model.runs import RunRecord, RunStatus

_TERMINAL_STEPS = ("succeeded", "failed", "skipped")


@dataclass(frozen=True)
class RunLine:
    """One run as the list shows it: the run without its steps, plus step counts."""

    run: RunRecord
    steps_done: int
    steps_total: int


@dataclass(frozen=True)
class RunPage:
    """A page of runs, newest first, and how many runs match the filter in all."""

    lines: tuple[RunLine, ...]
    total: int


def run_page(
    engine: Engine,
    *,
    workflow: str | None = None,
    statuses: Sequence[str] = (),
    limit: int = 50,
    offset: int = 0,
) -> RunPage:
    """Runs of ``workflow`` (any when None) whose stored status is in ``statuses`` (any
    when empty), newest first, ``limit`` of them from ``offset``."""
    runs, steps = runs_table, run_steps_table
    where = []
    if workflow is not None:
        where.append(runs.c.workflow == workflow)
    if statuses:
        where.append(runs.c.status.in_(list(statuses)))
    done = func.sum(case((steps.c.status.in_(_TERMINAL_STEPS), 1), else_=0), type_=Integer)
    counts = select(steps.c.run_id, done.label("done")).group_by(steps.c.run_id).subquery()
    query = (
        select(
            runs.c.id,
            runs.c.workflow,
            runs.c.status,
            runs.c.created_at,
            runs.c.started_at,
            runs.c.finished_at,
            runs.c.error,
            runs.c.owner,
            runs.c.heartbeat_at,
            # Every step of the plan counts; a step without a row is pending.
            func.json_array_length(runs.c.step_names).label("total"),
            counts.c.done,
        )
        .select_from(runs.outerjoin(counts, counts.c.run_id == runs.c.id))
        .where(*where)
        .order_by(runs.c.created_at.desc(), runs.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        total = conn.execute(select(func.count()).select_from(runs).where(*where)).scalar_one()
    lines = tuple(
        RunLine(
            RunRecord(
                id=row.id,
                workflow=row.workflow,
                status=RunStatus(row.status),
                created_at=row.created_at,
                started_at=row.started_at,
                finished_at=row.finished_at,
                error=row.error,
                owner=row.owner,
                heartbeat_at=row.heartbeat_at,
            ),
            int(row.done or 0),
            int(row.total or 0),
        )
        for row in rows
    )
    return RunPage(lines, int(total))


def workflow_names(engine: Engine) -> list[str]:
    """Every workflow that has runs, by name (the list's filter choices)."""
    with engine.connect() as conn:
        rows = conn.execute(select(runs_table.c.workflow).distinct()).scalars().all()
    return sorted(rows)
