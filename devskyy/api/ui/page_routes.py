"""The dashboard's pages: overview, graphs, runs, a run, revisions, security, audit.

Each page declares what it needs through its gate dependency (``Gate.allow`` or, for a
page with parameters, ``Gate.allow_with``), so that a handler only gathers what the page
shows (``views``, ``run_views``) and renders it. What each page needs is in ``access``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, Path, Query
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from devskyy.api.permissions import Need
from devskyy.api.ui import run_views, views
from devskyy.api.ui.access import (
    AUDIT,
    GRAPH,
    OVERVIEW,
    RESUME,
    REVISIONS,
    RUN,
    RUNS,
    SECURITY,
    Viewer,
)
from devskyy.api.ui.gate import Allowed, Gate
from devskyy.api.ui.pages import Pages
from devskyy.errors import DevskyyError, NotFound

# The pages' parameters are dependencies that the gate solves before it runs
# (``Gate.allow_with``): a bad one is the app's 422, with nothing charged or audited.


@dataclass(frozen=True)
class RunsQuery:
    """The runs list's filters and page."""

    workflow: str | None
    status: str | None
    page: int


async def runs_query(
    workflow: str | None = Query(None, max_length=63),
    status: str | None = Query(None, max_length=16),
    page: int = Query(0, ge=0, le=100_000),
) -> RunsQuery:
    return RunsQuery(workflow, status, page)


async def run_id(run_id: str = Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")) -> str:
    return run_id


async def revision_number(number: int = Path(ge=1, le=10**9)) -> int:
    return number


async def audit_actor(actor: str | None = Query(None, max_length=253)) -> str | None:
    return actor


def for_run(need: Need) -> Callable[[str], Need]:
    """``need`` of one run's page (``runs/{run_id}``), filled with the page's run id."""
    return lambda run: need.fill({"run_id": run})


def add(router: APIRouter, pages: Pages, gate: Gate) -> None:
    """Add every page to ``router``."""
    _overview_routes(router, pages, gate)
    _run_routes(router, pages, gate)
    _record_routes(router, pages, gate)


def _overview_routes(router: APIRouter, pages: Pages, gate: Gate) -> None:
    ctx = pages.ctx

    overview_gate, graph_gate = gate.allow(OVERVIEW), gate.allow(GRAPH)
    runs_gate = gate.allow_with(RUNS, runs_query)

    @router.get("/ui/")
    async def overview(viewer: Viewer = overview_gate) -> Response:
        rows = views.agent_rows(ctx, viewer)
        show_revision = viewer.may(REVISIONS)
        return pages.render(
            "overview.html",
            viewer,
            title="Overview",
            active="overview",
            agents=rows,
            counts=views.status_counts(rows),
            revision=views.latest_revision(ctx) if show_revision else None,
            show_revision=show_revision,
            drift=views.drift(ctx) if show_revision else None,
        )

    @router.get("/ui/graph")
    async def graph(viewer: Viewer = graph_gate) -> Response:
        return pages.render(
            "graph.html",
            viewer,
            title="Graphs",
            active="graph",
            agents=views.agent_graph(ctx),
            workflows=views.workflow_graphs(ctx, viewer),
        )

    @router.get("/ui/runs")
    async def runs(got: Allowed[RunsQuery] = runs_gate) -> Response:
        query, viewer, status = got.params, got.viewer, got.params.status
        if status and status not in run_views.STATUS_FILTERS:
            status = None
        data = run_views.runs_list(ctx, viewer, query.workflow, status, query.page)
        return pages.render("runs.html", viewer, title="Runs", active="runs", **data)


def _run_routes(router: APIRouter, pages: Pages, gate: Gate) -> None:
    ctx = pages.ctx
    run_gate = gate.allow_with(for_run(RUN), run_id)
    resume_gate = gate.allow_with(for_run(RESUME), run_id, csrf=True)

    @router.get("/ui/runs/{run_id}")
    async def run(got: Allowed[str] = run_gate) -> Response:
        viewer, rid = got.viewer, got.params
        try:
            record = ctx.runs.engine.store.get(rid)
        except NotFound:
            try:  # an orchestrator task started over the API has the same kind of id
                task = run_views.task_page_data(ctx, viewer, rid)
            except NotFound:
                return pages.error(viewer, 404, "No such run", f"No run has the id {rid}.")
            return pages.render("task.html", viewer, title=f"Task {rid}", active="runs", **task)
        data = run_views.run_page_data(ctx, viewer, record)
        return pages.render("run.html", viewer, title=f"Run {rid}", active="runs", **data)

    @router.get("/ui/runs/{run_id}/events")
    async def run_events(got: Allowed[str] = run_gate) -> Response:
        return StreamingResponse(
            run_views.live_events(ctx, got.params),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.post("/ui/runs/{run_id}/resume")
    async def resume(got: Allowed[str] = resume_gate) -> Response:
        try:
            ctx.runs.resume(got.params)
        except DevskyyError as exc:
            return pages.error(got.viewer, 409, "Not resumed", str(exc))
        return RedirectResponse(f"/ui/runs/{got.params}", 303)


def _record_routes(router: APIRouter, pages: Pages, gate: Gate) -> None:
    ctx = pages.ctx
    revisions_gate = gate.allow(REVISIONS)
    revision_gate = gate.allow_with(REVISIONS, revision_number)
    security_gate, audit_gate = gate.allow(SECURITY), gate.allow_with(AUDIT, audit_actor)

    @router.get("/ui/revisions")
    async def revisions(viewer: Viewer = revisions_gate) -> Response:
        return pages.render(
            "revisions.html",
            viewer,
            title="Revisions",
            active="revisions",
            revisions=views.revisions(ctx),
            drift=views.drift(ctx),
        )

    @router.get("/ui/revisions/{number}")
    async def revision(got: Allowed[int] = revision_gate) -> Response:
        viewer, number = got.viewer, got.params
        found = views.revision(ctx, number)
        if found is None:
            message = f"Revision {number} does not exist."
            return pages.error(viewer, 404, "No such revision", message)
        return pages.render(
            "revision.html",
            viewer,
            title=f"Revision {number}",
            active="revisions",
            revision=found,
            lines=views.revision_diff(ctx, number),
        )

    @router.get("/ui/security")
    async def security(viewer: Viewer = security_gate) -> Response:
        data = views.security(ctx, viewer)
        return pages.render("security.html", viewer, title="Security", active="security", **data)

    @router.get("/ui/audit")
    async def audit(got: Allowed[str | None] = audit_gate) -> Response:
        data = views.audit(ctx, got.params)
        return pages.render("audit.html", got.viewer, title="Audit log", active="audit", **data)
