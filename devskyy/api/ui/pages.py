"""Rendering the dashboard's pages: templates, security headers, the static files.

Pages carry a strict Content-Security-Policy (own scripts and styles only) and are never
cached. ``Pages`` is made once per app and shared by the gate and every route.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from devskyy.api.ui import views
from devskyy.api.ui.auth import UiAuth
from devskyy.api.ui.svg import state_text

if TYPE_CHECKING:
    from devskyy.api.context import ApiContext
    from devskyy.api.ui.access import Viewer

STATIC = {"ui.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8"}
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _static_files() -> dict[str, bytes]:
    folder = resources.files("devskyy.api.ui").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC}


class Pages:
    """The templates, sessions and static files of one app."""

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
        return HTMLResponse(html, status_code=code, headers={**HEADERS, **(headers or {})})

    def error(
        self,
        viewer: Viewer | None,
        code: int,
        title: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        """The error page with ``code``."""
        return self.render(
            "error.html", viewer, code=code, headers=headers, title=title, message=message
        )

    def refused(self) -> HTMLResponse:
        """A form without this session's CSRF token."""
        return self.error(None, 403, "Refused", "Bad or missing form token.")
