"""Runs, liveness and Prometheus: ``/api/runs/{id}`` (+ resume), ``/healthz``, ``/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response

from devskyy.api.context import ApiContext
from devskyy.api.deps import Caller
from devskyy.api.metrics import CONTENT_TYPE
from devskyy.api.models import ERRORS, Liveness, RunAccepted, RunView

RunId = Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")


def build(ctx: ApiContext) -> APIRouter:
    router = APIRouter()
    guard = Depends(ctx.guard)

    @router.get("/healthz", response_model=Liveness, tags=["meta"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers (no key needed, no details given)."""
        return {"status": "ok"}

    @router.get(
        "/metrics",
        tags=["meta"],
        response_class=Response,
        responses={
            **ERRORS,
            200: {"content": {"text/plain": {}}, "description": "Prometheus text"},
        },
    )
    async def metrics(caller: Caller = guard) -> Response:
        """Prometheus text format."""
        return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)

    @router.get("/api/runs/{run_id}", response_model=RunView, tags=["runs"], responses=ERRORS)
    async def run(
        run_id: str = RunId,
        caller: Caller = guard,
        wait: float = Query(0, ge=0, le=300, description="Seconds to wait for the run to end."),
    ) -> dict[str, Any]:
        """A run's progress and results, from the store (long-poll with ``wait``)."""
        if wait:
            await ctx.runs.wait_for(run_id, min(wait, ctx.settings.wait_timeout))
        return ctx.runs.view(run_id)

    @router.post(
        "/api/runs/{run_id}/resume",
        status_code=202,
        response_model=RunAccepted,
        tags=["runs"],
        responses=ERRORS,
    )
    async def resume(run_id: str = RunId, caller: Caller = guard) -> dict[str, Any]:
        """Continue an interrupted or cancelled run in the background."""
        kind = ctx.runs.resume(run_id)
        return {
            "run_id": run_id,
            "kind": kind,
            "status": ctx.runs.view(run_id)["status"],
            "status_url": f"/api/runs/{run_id}",
        }

    return router
