"""``devskyy schedules``: the applied schedules with their next fire, and what was recorded.

Reads the store only: the applied Workflows' ``spec.schedules`` (next fire computed from
the cron, the zone and now) and the ``schedule_fires`` rows the leading daemon wrote (each
due time fired with its run id, or missed or skipped with the reason). Times are RFC 3339
UTC with ``Z`` (``core.timefmt``) in every format.
"""

from __future__ import annotations

from typing import Any

import click

from devskyy.adapters.clock import SystemClock
from devskyy.adapters.run_store import SqlRunStore
from devskyy.adapters.schedule_store import Fire, SqlScheduleStore
from devskyy.adapters.state_store import SqlStateStore
from devskyy.cli._common import CliContext, emit, error_boundary, output_option, table
from devskyy.cli._state import read_engine
from devskyy.core.schedules import Status, next_fire, schedule_key
from devskyy.core.timefmt import rfc3339
from devskyy.errors import NotFound
from devskyy.model.manifests import Workflow


def next_fire_text(workflow: Workflow, now: float) -> str:
    """The earliest next fire of a workflow's schedules (``-`` without any, ``suspended``
    when all are), for ``get workflows`` and this command's table."""
    active = [s for s in workflow.spec.schedules if not s.suspend]
    if not workflow.spec.schedules:
        return "-"
    if not active:
        return "suspended"
    return rfc3339(min(next_fire(s.cron, s.timezone, now) for s in active)) or "-"


def _schedules(workflows: list[Workflow], now: float) -> list[dict[str, Any]]:
    out = []
    for workflow in workflows:
        for index, s in enumerate(workflow.spec.schedules):
            out.append(
                {
                    "workflow": workflow.name,
                    "index": index,
                    "schedule": schedule_key(s),
                    "cron": s.cron,
                    "timezone": s.timezone,
                    "concurrency_policy": s.concurrency_policy.value,
                    "starting_deadline_seconds": s.starting_deadline_seconds,
                    "suspend": s.suspend,
                    "next_fire": None if s.suspend else rfc3339(next_fire(s.cron, s.timezone, now)),
                }
            )
    return out


def _fire(fire: Fire, run_status: str | None) -> dict[str, Any]:
    return {
        "workflow": fire.workflow,
        "schedule": fire.schedule,
        "cron": fire.cron,
        "timezone": fire.timezone,
        "due_at": rfc3339(fire.due_at),
        "status": fire.status,
        "run_id": fire.run_id,
        "run_status": run_status,
        "reason": fire.reason,
        "recorded_at": rfc3339(fire.recorded_at),
    }


@click.command()
@click.option("--workflow", "-w", default=None, help="Only this workflow's schedules.")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=50,
    show_default=True,
    help="Recorded fires to show, newest first.",
)
@output_option("table", "json", "yaml")
@click.pass_obj
@error_boundary
def schedules(obj: CliContext, workflow: str | None, limit: int, output: str) -> None:
    """Workflow schedules: the next fire of each, and past fires (run ids) and missed ones.

    Only the watch daemon that holds the store's lease fires schedules; this command
    reads what it recorded.
    """
    url = obj.url()
    now = SystemClock().now()
    workflows: list[Workflow] = []
    fires: list[dict[str, Any]] = []
    with read_engine(url) as engine:
        if engine is not None:
            workflows = list(SqlStateStore(engine).live().workflows)
            runs = SqlRunStore(engine)
            for fire in SqlScheduleStore(engine).list_fires(workflow=workflow, limit=limit):
                if fire.status == Status.ARMED:
                    continue  # where counting started, not a due time
                fires.append(_fire(fire, _run_status(runs, fire.run_id)))
    if workflow is not None:
        workflows = [w for w in workflows if w.name == workflow]
        if not workflows and not fires:
            raise NotFound(f'workflow "{workflow}" is not applied and has no recorded fires')
    data = {"schedules": _schedules(workflows, now), "fires": fires}
    if output != "table":
        emit(data, output)
        return
    click.echo(_tables(data))


def _run_status(runs: SqlRunStore, run_id: str | None) -> str | None:
    if run_id is None:
        return None
    try:
        return runs.get(run_id).status.value
    except NotFound:
        return None


def _tables(data: dict[str, Any]) -> str:
    if not data["schedules"]:
        head = "No schedules in live state."
    else:
        head = table(
            [
                [
                    s["workflow"],
                    s["cron"],
                    s["timezone"],
                    s["concurrency_policy"],
                    "yes" if s["suspend"] else "no",
                    s["next_fire"] or "-",
                ]
                for s in data["schedules"]
            ],
            ["workflow", "cron", "timezone", "policy", "suspended", "next-fire"],
        )
    if not data["fires"]:
        return f"{head}\n\nNo fires recorded."
    rows = [
        [
            f["due_at"],
            f["workflow"],
            f["cron"],
            f["status"],
            f["run_id"] or "-",
            f["run_status"] or "-",
            f["reason"] or "-",
        ]
        for f in data["fires"]
    ]
    fires = table(rows, ["due", "workflow", "cron", "status", "run", "run-status", "reason"])
    return f"{head}\n\n{fires}"
