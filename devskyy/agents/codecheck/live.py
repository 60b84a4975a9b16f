"""The scanner's live check: one GET to a configured URL, with status and latency.

Only ``http``/``https`` URLs are probed; redirects are not followed (the status of the
configured URL itself is reported). Latency comes from the caller's monotonic clock.
Neither the URL's credentials nor its query string appear in the report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

NOT_CONFIGURED = "not configured"


def shown(url: str) -> str:
    """The URL without user info, query or fragment (safe to report)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _get(url: str, timeout: float) -> int:
    # urllib.request (http.client, email) on use: most scans have no live check.
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(_NoRedirect())
    headers = {"User-Agent": "devskyy-scanner"}
    request = urllib.request.Request(url, method="GET", headers=headers)  # noqa: S310 - http(s) only
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(65536)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


async def probe(url: str | None, timeout: float, monotonic: Callable[[], float]) -> dict[str, Any]:
    """``{"configured", "url", "ok", "status", "latency_ms", "error"}`` for one GET."""
    if not url:
        return {"configured": False, "status": NOT_CONFIGURED}
    if urlsplit(url).scheme not in ("http", "https"):
        return {"configured": True, "url": shown(url), "ok": False, "error": "not an http(s) URL"}
    started = monotonic()
    try:
        status = await asyncio.to_thread(_get, url, timeout)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        return {
            "configured": True,
            "url": shown(url),
            "ok": False,
            "status": None,
            "latency_ms": round((monotonic() - started) * 1000, 1),
            "error": str(reason),
        }
    return {
        "configured": True,
        "url": shown(url),
        "ok": 200 <= status < 400,
        "status": status,
        "latency_ms": round((monotonic() - started) * 1000, 1),
        "error": None,
    }
