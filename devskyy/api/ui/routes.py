"""The ``/ui`` routes: server-rendered pages over one ``ApiContext``; translation only.

Every page but the login form and the static files goes through ``Pages.gate``: the session
cookie must name a live session of a usable key (else 303 to ``/ui/login``), the
principal's rate limit applies (429), and the page's need is decided by
``ApiContext.decide`` with the presented key, audited as an API request is (403 page).
The one write, resume, also needs the session's CSRF token. Pages carry a strict
Content-Security-Policy (own scripts and styles only) and are never cached. The live
view of a run is a server-sent event stream (``run_views.live_events``).
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from devskyy.api.deps import ApiError, Caller
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
from devskyy.api.ui.auth import (
    Limited,
    UiAuth,
    clear_session_cookie,
    login_token_ok,
    new_login_token,
    set_login_cookie,
    set_session_cookie,
)
from devskyy.api.ui.svg import state_text
from devskyy.errors import DevskyyError, NotFound

if TYPE_CHECKING:
    from devskyy.api.context import ApiContext

STATIC = {"ui.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8"}
_FORM_CAP = 8192
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
RunId = Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path under /ui only (no open redirect)."""
    if target and target.startswith("/ui/") and "//" not in target and "\\" not in target:
        return target
    return "/ui/"


def _static_files() -> dict[str, bytes]:
    folder = resources.files("devskyy.api.ui").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC}


class Pages:
    """Templates and the request gate of one app."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.auth = UiAuth(ctx)
        self.env = Environment(
            loader=PackageLoader("devskyy.api.ui", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["state_text"] = state_text
        self.env.filters["short_time"] = views.short_time
        self.static = _static_files()

    def render(
        self,
        name: str,
        viewer: Viewer | None,
        *,
        code: int = 200,
        headers: dict[str, str] | None = None,
        **values: Any,
    ) -> HTMLResponse:
        nav = viewer.nav() if viewer else {}
        html = self.env.get_template(name).render(viewer=viewer, nav=nav, **values)
        return HTMLResponse(html, status_code=code, headers={**_HEADERS, **(headers or {})})

    def refused(self) -> HTMLResponse:
        """A form without this session's CSRF token."""
        return self.render(
            "error.html", None, code=403, title="Refused", message="Bad or missing form token."
        )

    def to_login(self, request: Request) -> Response:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        response = RedirectResponse(f"/ui/login?next={quote(target, safe='/')}", 303)
        if request.cookies.get("devskyy_session"):
            clear_session_cookie(response, request)  # unknown or forged: forget it
        return response

    def gate(self, request: Request, need: Need | None) -> Viewer | Response:
        """The viewer of a request allowed ``need``, or the response to send instead."""
        got = self.auth.viewer(request)
        if got is None:
            return self.to_login(request)
        if isinstance(got, Limited):
            return self.render(
                "error.html",
                None,
                code=429,
                headers=got.headers,
                title="Too many requests",
                message=f"Too many requests; try again in {got.retry_after} s.",
            )
        if need is not None:
            caller = Caller(got.principal, got.role, got.key_id, self.ctx)
            try:
                self.ctx.decide(caller, need)
            except ApiError as exc:
                detail = exc.detail if isinstance(exc.detail, dict) else {}
                return self.render(
                    "error.html",
                    got,
                    code=exc.status,
                    title="Not allowed",
                    message=(
                        f"Your key (role {got.role}) may not {need.permission} "
                        f"{need.resource}: {detail.get('reason', exc.error)}."
                    ),
                )
        return got


def build(ctx: ApiContext) -> APIRouter:
    """The dashboard's router (not part of the OpenAPI document)."""
    router = APIRouter(include_in_schema=False)
    pages = Pages(ctx)
    _session_routes(router, pages)
    _overview_routes(router, pages)
    _run_routes(router, pages)
    _record_routes(router, pages)
    _missing_route(router, pages)  # last: every page above takes precedence
    return router


def _missing_route(router: APIRouter, pages: Pages) -> None:
    """An unknown page under /ui is a dashboard page saying so, not the API's JSON 404."""

    @router.get("/ui/{path:path}")
    async def missing(request: Request, path: str) -> Response:
        got = pages.auth.viewer(request)  # signed out: the same 404, without the navigation
        viewer = got if isinstance(got, Viewer) else None
        message = f"There is no page /ui/{path}."
        return pages.render("error.html", viewer, code=404, title="No such page", message=message)


def _session_routes(router: APIRouter, pages: Pages) -> None:
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
        form = await _form(request)
        target = _safe_next(form.get("next"))
        if not login_token_ok(request, form.get("login_token", "")):
            # Login CSRF: a form posted from another site (or an expired one) signs no one in.
            return login_page(
                request,
                target,
                "This sign-in form expired or came from another page; sign in again.",
                code=403,
            )
        outcome = pages.auth.sign_in(request, form.get("api_key", ""))
        if outcome.session_id is None:
            headers = {"Retry-After": str(outcome.retry_after)} if outcome.retry_after else {}
            return login_page(
                request, target, outcome.message, code=outcome.status, headers=headers
            )
        response = RedirectResponse(target, 303)
        max_age = outcome.expires_at - ctx.system.clock.now()
        set_session_cookie(response, request, outcome.session_id, max_age)
        return response

    @router.post("/ui/logout")
    async def logout(request: Request) -> Response:
        form = await _form(request)
        if not pages.auth.csrf_ok(request, form.get("csrf", "")):
            return pages.refused()
        pages.auth.sign_out(request)
        response = RedirectResponse("/ui/login", 303)
        clear_session_cookie(response, request)
        return response


def _overview_routes(router: APIRouter, pages: Pages) -> None:
    ctx = pages.ctx

    @router.get("/ui/")
    async def overview(request: Request) -> Response:
        viewer = pages.gate(request, OVERVIEW)
        if not isinstance(viewer, Viewer):
            return viewer
        rows = views.agent_rows(ctx, viewer)
        revs = views.revisions(ctx)[:1] if viewer.may(REVISIONS) else None
        return pages.render(
            "overview.html",
            viewer,
            title="Overview",
            active="overview",
            agents=rows,
            counts=views.status_counts(rows),
            revision=revs[0] if revs else None,
            show_revision=revs is not None,
            drift=views.drift(ctx) if revs is not None else None,
        )

    @router.get("/ui/graph")
    async def graph(request: Request) -> Response:
        viewer = pages.gate(request, GRAPH)
        if not isinstance(viewer, Viewer):
            return viewer
        return pages.render(
            "graph.html",
            viewer,
            title="Graphs",
            active="graph",
            agents=views.agent_graph(ctx),
            workflows=views.workflow_graphs(ctx, viewer),
        )

    @router.get("/ui/runs")
    async def runs(
        request: Request,
        workflow: str | None = Query(None, max_length=63),
        status: str | None = Query(None, max_length=16),
        page: int = Query(0, ge=0, le=100_000),
    ) -> Response:
        viewer = pages.gate(request, RUNS)
        if not isinstance(viewer, Viewer):
            return viewer
        if status and status not in run_views.STATUS_FILTERS:
            status = None
        data = run_views.runs_list(ctx, viewer, workflow, status, page)
        return pages.render("runs.html", viewer, title="Runs", active="runs", **data)


def _run_routes(router: APIRouter, pages: Pages) -> None:
    ctx = pages.ctx

    @router.get("/ui/runs/{run_id}")
    async def run(request: Request, run_id: str = RunId) -> Response:
        viewer = pages.gate(request, RUN.fill({"run_id": run_id}))
        if not isinstance(viewer, Viewer):
            return viewer
        try:
            record = ctx.runs.engine.store.get(run_id)
        except NotFound:
            try:  # an orchestrator task started over the API has the same kind of id
                task = run_views.task_page_data(ctx, viewer, run_id)
            except NotFound:
                return pages.render(
                    "error.html",
                    viewer,
                    code=404,
                    title="No such run",
                    message=f"No run has the id {run_id}.",
                )
            return pages.render("task.html", viewer, title=f"Task {run_id}", active="runs", **task)
        data = run_views.run_page_data(ctx, viewer, record)
        return pages.render("run.html", viewer, title=f"Run {run_id}", active="runs", **data)

    @router.get("/ui/runs/{run_id}/events")
    async def run_events(request: Request, run_id: str = RunId) -> Response:
        viewer = pages.gate(request, RUN.fill({"run_id": run_id}))
        if not isinstance(viewer, Viewer):
            return viewer
        return StreamingResponse(
            run_views.live_events(ctx, run_id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.post("/ui/runs/{run_id}/resume")
    async def resume(request: Request, run_id: str = RunId) -> Response:
        form = await _form(request)
        if not pages.auth.csrf_ok(request, form.get("csrf", "")):
            return pages.refused()
        viewer = pages.gate(request, RESUME.fill({"run_id": run_id}))
        if not isinstance(viewer, Viewer):
            return viewer
        try:
            ctx.runs.resume(run_id)
        except DevskyyError as exc:
            return pages.render(
                "error.html", viewer, code=409, title="Not resumed", message=str(exc)
            )
        return RedirectResponse(f"/ui/runs/{run_id}", 303)


def _record_routes(router: APIRouter, pages: Pages) -> None:
    ctx = pages.ctx

    @router.get("/ui/revisions")
    async def revisions(request: Request) -> Response:
        viewer = pages.gate(request, REVISIONS)
        if not isinstance(viewer, Viewer):
            return viewer
        return pages.render(
            "revisions.html",
            viewer,
            title="Revisions",
            active="revisions",
            revisions=views.revisions(ctx),
            drift=views.drift(ctx),
        )

    @router.get("/ui/revisions/{number}")
    async def revision(request: Request, number: int = Path(ge=1, le=10**9)) -> Response:
        viewer = pages.gate(request, REVISIONS)
        if not isinstance(viewer, Viewer):
            return viewer
        found = [r for r in views.revisions(ctx) if r["number"] == number]
        if not found:
            return pages.render(
                "error.html",
                viewer,
                code=404,
                title="No such revision",
                message=f"Revision {number} does not exist.",
            )
        return pages.render(
            "revision.html",
            viewer,
            title=f"Revision {number}",
            active="revisions",
            revision=found[0],
            lines=views.revision_diff(ctx, number),
        )

    @router.get("/ui/security")
    async def security(request: Request) -> Response:
        viewer = pages.gate(request, SECURITY)
        if not isinstance(viewer, Viewer):
            return viewer
        data = views.security(ctx, viewer)
        return pages.render("security.html", viewer, title="Security", active="security", **data)

    @router.get("/ui/audit")
    async def audit(request: Request, actor: str | None = Query(None, max_length=253)) -> Response:
        viewer = pages.gate(request, AUDIT)
        if not isinstance(viewer, Viewer):
            return viewer
        data = views.audit(ctx, actor)
        return pages.render("audit.html", viewer, title="Audit log", active="audit", **data)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (first value each); capped, no multipart."""
    body = await request.body()
    if len(body) > _FORM_CAP:
        return {}
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=16)
    return {name: values[0] for name, values in fields.items()}
