"""``ApiContext``: what the routers need, and the dependency that hands it to them.

One ``ApiContext`` per app (``create_app`` stores it in ``app.state.api``): the runtime
``System``, the settings, the security manager, the metrics, the background runs and the
authentication ``guard``. Routers get it through the ``api_context`` FastAPI dependency
(or the ``build(ctx)`` argument) and import nothing from ``api/app.py``, so the app and
its routers form no import cycle. ``accepted_or_done`` is the shared answer of the
endpoints that start background work.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from fastapi import Request, Response

from devskyy.api.deps import ApiError, Caller, Guard
from devskyy.api.metrics import ApiMetrics
from devskyy.api.models import RunAccepted
from devskyy.api.paths_out import ShownPaths
from devskyy.api.permissions import Need
from devskyy.api.runs import Runs
from devskyy.api.settings import ApiSettings
from devskyy.core.ratelimit import RateDecision
from devskyy.runtime.security import SecurityManager
from devskyy.runtime.system import System


class ApiContext:
    """What the routers need: the runtime, the settings and the API's own parts."""

    def __init__(self, system: System, settings: ApiSettings) -> None:
        self.system = system
        self.settings = settings
        self.security: SecurityManager = system.security_manager()
        self.metrics = ApiMetrics(system)
        system.orchestrator.call_observers.append(self.metrics.observe_call)
        # Answers show workspace paths relative and hide other server paths (paths_out).
        self.paths = ShownPaths.of(settings.workspace_roots)
        self.runs = Runs(system, self.metrics.run_ended, paths=self.paths)
        self.guard = Guard(self)
        # The dashboard's memos: diffs of stored revisions (which never change) and the
        # last drift check (keyed by tree, revision and a 5 s slot).
        self.revision_diffs: dict[int, list[tuple[str, str]]] = {}
        self.drift: tuple[tuple[str, int | None, float], dict[str, Any]] | None = None

    def rate_limit(self, principal: str) -> RateDecision:
        """Count a request of ``principal``: its Agent manifest's limit, else the default."""
        limit = self.settings.rate_limit
        if limit is None:
            return self.security.rate_limit(principal)
        return self.security.rate_limit(principal, default=(limit, self.settings.rate_window))

    def readable_agents(self, caller: Caller, names: Collection[str]) -> set[str]:
        """The agents among ``names`` the caller's key may read one by one."""
        resources = {f"agents/{name}": name for name in names}
        allowed = self.security.may_read(caller.principal, caller.key_id, list(resources))
        return {resources[r] for r in allowed}

    def decide(self, caller: Caller, need: Need) -> None:
        """RBAC for the presented key (audited by the manager); 403 with the reason."""
        decision = self.security.authorize(
            caller.principal, need.resource, need.permission, presented_key_id=caller.key_id
        )
        if not decision.allowed:
            self.metrics.denied.inc()
            raise ApiError(
                403,
                "forbidden",
                {
                    "reason": decision.reason,
                    "permission": need.permission,
                    "resource": need.resource,
                },
            )


def api_context(request: Request) -> ApiContext:
    """The FastAPI dependency: the ``ApiContext`` of the app serving ``request``."""
    ctx = request.app.state.api
    assert isinstance(ctx, ApiContext)
    return ctx


def accepted_or_done(
    ctx: ApiContext, run_id: str, kind: str, waited: bool, response: Response
) -> dict[str, Any]:
    """The run's view when the caller waited and it ended, else 202 with where to poll."""
    view = ctx.runs.view(run_id)
    if waited and view["status"] not in ("pending", "running"):
        response.status_code = 200
        return view
    response.status_code = 202
    return RunAccepted(
        run_id=run_id, kind=kind, status=view["status"], status_url=f"/api/runs/{run_id}"
    ).model_dump()
