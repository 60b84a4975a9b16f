"""The ``/ui`` router: signing in and out, the static files, the unknown-page answer.

``build`` assembles the dashboard's router over one ``ApiContext``; translation only.
Every page but the login form and the static files goes through the gate
(``gate.Gate``, a FastAPI dependency: session, rate limit, audited decision); the pages
themselves are in ``page_routes``. The one write, resume, and sign-out also need the
session's CSRF token. The live view of a run is a server-sent event stream
(``run_views.live_events``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from devskyy.api.ui import page_routes
from devskyy.api.ui.access import Viewer
from devskyy.api.ui.auth import (
    clear_session_cookie,
    login_token_ok,
    new_login_token,
    set_login_cookie,
    set_session_cookie,
)
from devskyy.api.ui.gate import Gate, HaltRoute, form
from devskyy.api.ui.pages import STATIC, Pages
from devskyy.errors import NotFound

if TYPE_CHECKING:
    from devskyy.api.context import ApiContext


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path under /ui only (no open redirect)."""
    if target and target.startswith("/ui/") and "//" not in target and "\\" not in target:
        return target
    return "/ui/"


def build(ctx: ApiContext) -> APIRouter:
    """The dashboard's router (not part of the OpenAPI document)."""
    router = APIRouter(include_in_schema=False, route_class=HaltRoute)
    pages = Pages(ctx)
    gate = Gate(pages)
    _session_routes(router, pages, gate)
    page_routes.add(router, pages, gate)
    _missing_route(router, pages)  # last: every page above takes precedence
    return router


def _missing_route(router: APIRouter, pages: Pages) -> None:
    """An unknown page under /ui is a dashboard page saying so, not the API's JSON 404."""

    @router.get("/ui/{path:path}")
    async def missing(request: Request, path: str) -> Response:
        got = pages.auth.viewer(request)  # signed out: the same 404, without the navigation
        viewer = got if isinstance(got, Viewer) else None
        return pages.error(viewer, 404, "No such page", f"There is no page /ui/{path}.")


def _session_routes(router: APIRouter, pages: Pages, gate: Gate) -> None:
    ctx = pages.ctx

    @router.get("/ui")
    async def root() -> Response:
        return RedirectResponse("/ui/", 308)

    @router.get("/ui/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise NotFound(f"no static file {name!r}")
        return Response(
            pages.static[name],
            media_type=STATIC[name],
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    def login_page(
        request: Request,
        target: str,
        message: str | None,
        *,
        code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """The sign-in form with a fresh double-submit token (cookie and hidden field)."""
        token = new_login_token()
        response = pages.render(
            "login.html",
            None,
            code=code,
            title="Sign in",
            headers=headers,
            next=target,
            message=message,
            login_token=token,
        )
        set_login_cookie(response, request, token)
        return response

    @router.get("/ui/login")
    async def login_form(
        request: Request, next: str | None = Query(None, max_length=512)
    ) -> Response:
        return login_page(request, _safe_next(next), None)

    @router.post("/ui/login")
    async def login(request: Request) -> Response:
        fields = await form(request)
        target = _safe_next(fields.get("next"))
        if not login_token_ok(request, fields.get("login_token", "")):
            # Login CSRF: a form posted from another site (or an expired one) signs no one in.
            return login_page(
                request,
                target,
                "This sign-in form expired or came from another page; sign in again.",
                code=403,
            )
        outcome = pages.auth.sign_in(request, fields.get("api_key", ""))
        if outcome.session_id is None:
            headers = {"Retry-After": str(outcome.retry_after)} if outcome.retry_after else {}
            return login_page(
                request, target, outcome.message, code=outcome.status, headers=headers
            )
        response = RedirectResponse(target, 303)
        max_age = outcome.expires_at - ctx.system.clock.now()
        set_session_cookie(response, request, outcome.session_id, max_age)
        return response

    @router.post("/ui/logout", dependencies=[gate.csrf()])
    async def logout(request: Request) -> Response:
        pages.auth.sign_out(request)
        response = RedirectResponse("/ui/login", 303)
        clear_session_cookie(response, request)
        return response
