"""``create_app(system, settings)``: the FastAPI app over one ``System`` (no globals).

The app holds an ``ApiContext`` (``api/context.py``: system, settings, security manager,
metrics, runs) in ``app.state.api``; routers reach it through the ``api_context``
dependency and import nothing from this module. Around every request, ``_Edge`` (plain ASGI, cheap):
assigns the request id (``X-Request-ID`` echoed when sane, else generated), refuses a
body over the cap (413), turns any unhandled exception into
``{"error": "internal", "request_id": …}`` (never a stack trace), adds the
``RateLimit-*`` headers, counts the request and writes one JSON access log line
(method, route, status, duration, principal; never a key). It also cleans what comes in
(``api/boundary.py``: JSON nested past the limit is 422 before anything decodes it; keys
in JSON bodies and query strings are redacted) and what goes out (``Cache-Control:
no-store`` on every answer; error bodies without keys or workspace paths). An internal
error logs its traceback; the client sees only the request id. The Prometheus ``method``
label keeps the known methods and counts the rest as ``other``.
"""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
import uuid
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devskyy.api.boundary import (
    KEY_ROUTES,
    clean_answer,
    is_json,
    redact_json_body,
    redact_query,
    too_deep,
)
from devskyy.api.context import ApiContext
from devskyy.api.deps import ApiError, Caller
from devskyy.api.openapi import document as api_document
from devskyy.api.permissions import SIGNED
from devskyy.api.routers.gitops import PushWebhook
from devskyy.api.settings import ApiSettings
from devskyy.errors import DevskyyError, NotFound, PermissionDenied, SecurityError, StateError
from devskyy.runtime.system import System

__all__ = ["ApiContext", "create_app"]

access_log = logging.getLogger("devskyy.api.access")
error_log = logging.getLogger("devskyy.api")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def _error(
    request: Request, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error answer: no key, and server paths shown as in every answer (``clean_answer``)."""
    ctx = getattr(request.app.state, "api", None)
    return _json(status, clean_answer(body, ctx.paths if ctx is not None else None), headers)


def _request_id(request: Request) -> str | None:
    rid = request.scope.get("state", {}).get("request_id")
    return str(rid) if rid else None


def _install_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        body = {"error": exc.error, "detail": exc.detail, "request_id": _request_id(request)}
        return _error(request, exc.status, body, exc.headers)

    async def devskyy_error(request: Request, exc: Exception) -> JSONResponse:
        status, code = 400, "bad_request"
        if isinstance(exc, NotFound):
            status, code = 404, "not_found"
        elif isinstance(exc, PermissionDenied):
            status, code = 403, "forbidden"
        elif isinstance(exc, StateError):
            status, code = 409, "conflict"
        elif isinstance(exc, SecurityError):
            status, code = 400, "bad_request"
        body = {"error": code, "detail": str(exc), "request_id": _request_id(request)}
        return _error(request, status, body)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        fields = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        body = {"error": "invalid_request", "detail": fields, "request_id": _request_id(request)}
        return _error(request, 422, body)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = {"error": code, "detail": exc.detail, "request_id": _request_id(request)}
        return _error(request, exc.status_code, body, dict(exc.headers or {}))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(DevskyyError, devskyy_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)


class _TooLarge(Exception):
    pass


class _Exchange:
    """One request as the edge sees it: its id, the status sent, the body bytes read."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        given, self.length, self.content_type = "", "", ""
        for name, value in scope["headers"]:
            lowered = name.lower()
            if lowered == b"x-request-id":
                given = value.decode("latin-1")
            elif lowered == b"content-length":
                self.length = value.decode("latin-1")
            elif lowered == b"content-type":
                self.content_type = value.decode("latin-1")
        self.rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        self.state: dict[str, Any] = scope.setdefault("state", {})
        self.state["request_id"] = self.rid
        self.status = 500
        self.sent = False
        self.cap = cap
        self.received = 0
        self.overflow = False
        self._receive = receive
        self._send = send
        self._replay: list[Message] = []

    async def read_body(self) -> bytes:
        """The whole body (capped), kept to be handed to the app by ``receive``."""
        chunks: list[bytes] = []
        while True:
            message = await self.receive()
            if message["type"] != "http.request":
                self._replay.append(message)
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def replay(self, body: bytes) -> None:
        """Hand ``body`` to the app as one message (before anything else read)."""
        self._replay.insert(0, {"type": "http.request", "body": body, "more_body": False})

    async def app_receive(self) -> Message:
        if self._replay:
            return self._replay.pop(0)
        return await self.receive()

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.cap:
                # The framework may turn any error while reading into its own 400;
                # ``send`` then answers 413 in place of whatever the app sends.
                self.overflow = True
                raise _TooLarge
        return message

    async def send(self, message: Message) -> None:
        if self.overflow:
            if message["type"] == "http.response.start":
                await self.too_large()
            return
        if message["type"] == "http.response.start":
            self.status, self.sent = message["status"], True
            extra = [(b"x-request-id", self.rid.encode())]
            for name, value in self.state.get("ratelimit", {}).items():
                extra.append((name.lower().encode(), value.encode()))
            if not any(k.lower() == b"cache-control" for k, _ in message.get("headers", [])):
                # Answers are per caller and may carry a key (a new one, once): no cache
                # or proxy may keep them.
                extra.append((b"cache-control", b"no-store"))
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await self._send(message)

    async def reply(self, code: int, body: dict[str, Any]) -> None:
        """Answer with a JSON error unless a response has begun."""
        if self.sent:
            return
        self.status, self.sent = code, True
        raw = json.dumps({**body, "request_id": self.rid}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            (b"x-request-id", self.rid.encode()),
            (b"cache-control", b"no-store"),
        ]
        await self._send({"type": "http.response.start", "status": code, "headers": headers})
        await self._send({"type": "http.response.body", "body": raw})

    async def too_large(self) -> None:
        await self.reply(413, {"error": "too_large", "detail": f"body over {self.cap} bytes"})


class _Edge:
    """Request id, body cap, error shield, rate headers, metrics and the access log."""

    def __init__(self, app: ASGIApp, ctx: ApiContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        ex = _Exchange(scope, receive, send, self.ctx.settings.max_body_bytes)
        try:
            if ex.length.isdigit() and int(ex.length) > ex.cap:
                await ex.too_large()
            elif await self._admit(scope, ex):
                await self.app(scope, ex.app_receive, ex.send)
        except _TooLarge:
            await ex.too_large()
        except Exception as exc:
            # The client sees only the request id; the log keeps what happened, with the
            # traceback (the log filter redacts keys in it).
            error_log.error(
                "unhandled error",
                extra={
                    "fields": {
                        "request_id": ex.rid,
                        "error": type(exc).__name__,
                        "traceback": "".join(traceback.format_exception(exc)),
                    }
                },
            )
            await ex.reply(500, {"error": "internal"})
        finally:
            self._account(scope, ex.state, ex.rid, ex.status, time.perf_counter() - started)

    async def _admit(self, scope: Scope, ex: _Exchange) -> bool:
        """Clean the query string and body (``api/boundary.py``); False when refused."""
        method, path = scope["method"], scope["path"]
        # A signed webhook's body must reach its handler byte for byte (the HMAC covers it).
        exempt = (method, path) in KEY_ROUTES or (method, path) in SIGNED
        if path.startswith("/api/") and not exempt:
            scope["query_string"] = redact_query(scope.get("query_string", b""))
        if method in _NO_BODY or not is_json(ex.content_type):
            return True
        body = await ex.read_body()
        problem = too_deep(body)
        if problem is not None:
            field = {"loc": ["body"], "msg": problem, "type": "json_too_deep"}
            await ex.reply(422, {"error": "invalid_request", "detail": [field]})
            return False
        if not exempt:
            cleaned = redact_json_body(body)
            if cleaned is not body:
                body = cleaned
                scope["headers"] = [
                    (k, str(len(body)).encode() if k.lower() == b"content-length" else v)
                    for k, v in scope["headers"]
                ]
        ex.replay(body)
        return True

    def _account(
        self, scope: Scope, state: dict[str, Any], rid: str, status: int, seconds: float
    ) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = scope["method"]
        metrics = self.ctx.metrics
        # A label per method a client makes up would grow the series without bound.
        label = method if method in _METHODS else "other"
        metrics.requests.labels(label, route, str(status)).inc()
        metrics.request_seconds.labels(route).observe(seconds)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "request",
                extra={
                    "fields": {
                        "request_id": rid,
                        "method": method,
                        "route": route if route != "unmatched" else f"unmatched {scope['path']}",
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                        "principal": state.get("principal"),
                    }
                },
            )


def create_app(
    system: System, settings: ApiSettings | None = None, *, webhook: PushWebhook | None = None
) -> FastAPI:
    """The HTTP API over ``system`` (see the package docs for the endpoints).

    ``webhook``: given by ``watch --serve`` in pull mode, the push webhook's secret, branch
    and the daemon's hint; without it the webhook answers 409 with the reason.
    """
    from devskyy.api.routers import agents, gitops, orchestrator, registry, runs, security  # noqa: PLC0415
    from devskyy.api.ui import build as build_ui  # noqa: PLC0415

    ctx = ApiContext(system, settings or ApiSettings())
    app = FastAPI(
        title="devskyy",
        version="0.1.0",
        description="The devskyy runtime over HTTP: agents, workflows, security.",
        # The document is served below behind a key like every route but /healthz; the
        # interactive pages would load their scripts from a CDN, so they are off.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.api = ctx
    _install_handlers(app)
    for module in (orchestrator, registry, security, agents, runs):
        app.include_router(module.build(ctx))
    app.include_router(gitops.build(ctx, webhook))
    app.include_router(build_ui(ctx))  # the dashboard under /ui (docs/ui.md)

    guard = Depends(ctx.guard)
    setattr(app, "openapi", lambda: api_document(app))  # noqa: B010 - FastAPI's hook

    @app.get("/openapi.json", tags=["meta"], response_class=JSONResponse)
    async def openapi_document(caller: Caller = guard) -> JSONResponse:
        """This API's OpenAPI document (any valid key may read it)."""
        return JSONResponse(app.openapi())

    app.add_middleware(_Edge, ctx=ctx)
    return app
