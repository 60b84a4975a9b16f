"""The request gate of every dashboard page, as FastAPI dependencies.

``Gate.allow(need)`` is the dependency of a page: the session cookie must name a live
session of a usable key (else 303 to ``/ui/login``, forgetting a forged cookie), the
principal's rate limit applies (429 page with ``Retry-After``), and ``need`` is decided by
``ApiContext.decide`` with the presented key, audited as an API request is (403 page).
``Gate.allow_with(need, params)`` does the same for a page with parameters: ``params`` (a
dependency reading the path or query) is validated first, as the page's own parameters
were before the gate existed (a bad one is the app's 422, nothing charged or audited),
and ``need`` may be a function of its value (``RUN`` filled with the run's id). With
``csrf=True`` the form's token must be the session's before anything else is decided
(the refusal is a 403 page). ``Gate.csrf`` is that check alone (sign-out).

A dependency cannot return a response, so the gate raises ``Halt`` with the one to send,
and ``HaltRoute`` (the route class of the dashboard's router) sends it. The dependencies
are coroutines, so that they run on the event loop as the pages do (FastAPI runs a plain
function in its thread pool).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import parse_qs, quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute

from devskyy.api.deps import ApiError, Caller
from devskyy.api.permissions import Need
from devskyy.api.ui.access import Viewer
from devskyy.api.ui.auth import COOKIE, Limited, clear_session_cookie

if TYPE_CHECKING:
    from devskyy.api.ui.pages import Pages

P = TypeVar("P")
FORM_CAP = 8192
"""Bytes of a dashboard form (sign-in, sign-out, resume): a larger body has no fields."""


class Halt(Exception):
    """The response the gate sends instead of the page."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class HaltRoute(APIRoute):
    """A route that sends the response of a ``Halt`` raised by its dependencies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except Halt as halt:
                return halt.response

        return route


@dataclass(frozen=True)
class Allowed(Generic[P]):
    """A gated page's viewer and its validated parameters."""

    viewer: Viewer
    params: P


async def form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (first value each); capped, no multipart.

    Starlette keeps the body once read, so the gate and the page may both read the form.
    """
    body = await request.body()
    if len(body) > FORM_CAP:
        return {}
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=16)
    return {name: values[0] for name, values in fields.items()}


class Gate:
    """The dependencies that let a request through to a page, or halt it."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def to_login(self, request: Request) -> Response:
        """303 to the sign-in form, which comes back to this page once signed in."""
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        response = RedirectResponse(f"/ui/login?next={quote(target, safe='/')}", 303)
        if request.cookies.get(COOKIE):
            clear_session_cookie(response, request)  # unknown or forged: forget it
        return response

    def viewer(self, request: Request, need: Need) -> Viewer:
        """The viewer of a request allowed ``need``; ``Halt`` with the answer otherwise."""
        pages = self.pages
        got = pages.auth.viewer(request)
        if got is None:
            raise Halt(self.to_login(request))
        if isinstance(got, Limited):
            message = f"Too many requests; try again in {got.retry_after} s."
            raise Halt(pages.error(None, 429, "Too many requests", message, got.headers))
        ctx = pages.ctx
        caller = Caller(got.principal, got.role, got.key_id, ctx)
        try:
            ctx.decide(caller, need)
        except ApiError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {}
            message = (
                f"Your key (role {got.role}) may not {need.permission} "
                f"{need.resource}: {detail.get('reason', exc.error)}."
            )
            raise Halt(pages.error(got, exc.status, "Not allowed", message)) from None
        return got

    async def check_csrf(self, request: Request) -> None:
        """``Halt`` with a 403 page unless the form carries this session's CSRF token."""
        fields = await form(request)
        if not self.pages.auth.csrf_ok(request, fields.get("csrf", "")):
            raise Halt(self.pages.refused())

    def csrf(self) -> Any:
        """The dependency of a form that needs only the CSRF token (sign-out)."""
        return Depends(self.check_csrf)

    def allow(self, need: Need) -> Any:
        """The dependency of a page without parameters: its ``Viewer``."""

        async def allowed(request: Request) -> Viewer:
            return self.viewer(request, need)

        return Depends(allowed)

    def allow_with(
        self,
        need: Need | Callable[[P], Need],
        params: Callable[..., Awaitable[P]],
        *,
        csrf: bool = False,
    ) -> Any:
        """The dependency of a page with parameters: ``Allowed(viewer, params)``.

        ``params`` is solved (and validated) before the gate runs; ``need`` may be
        computed from its value.
        """

        solved = Depends(params)

        async def allowed(request: Request, values: P = solved) -> Allowed[P]:
            if csrf:
                await self.check_csrf(request)
            wanted = need if isinstance(need, Need) else need(values)
            return Allowed(self.viewer(request, wanted), values)

        return Depends(allowed)
