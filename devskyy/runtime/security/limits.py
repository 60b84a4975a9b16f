"""Per-principal rate limits at run time (the arithmetic is ``devskyy.core.ratelimit``).

The limit of a principal is, in order: an explicit one (the guide's call), the
``rateLimit`` of its Agent manifest, the caller's default (the API's settings), the
manager's default (100 per 60 s). Over the limit, one ``rate.limited`` audit event per
principal per window, so a flood cannot flood the log.

With a shared store (``windows``, ``adapters/rate_store.py``) the log of each principal
lives in the store and every server counts in it with one upsert per request, on wall
time (``clock.now()``: every server must read the same time line); without one, an
in-process log on monotonic time. Both decide through ``core.ratelimit``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from devskyy.adapters.clock import Clock
from devskyy.adapters.rate_store import RateWindows
from devskyy.core.ratelimit import (
    DEFAULT_LIMIT,
    DEFAULT_WINDOW,
    RateDecision,
    SlidingWindowLog,
    check_limit,
    decide,
    to_micros,
)
from devskyy.model.security import EventType, Outcome

Audit = Callable[..., None]
ManifestLimit = Callable[[str], "tuple[int, float] | None"]


class RateLimits:
    """Sliding-window logs per principal, with the limits resolved as above."""

    def __init__(
        self,
        clock: Clock,
        manifest_limit: ManifestLimit,
        event: Audit,
        counters: dict[str, int],
        windows: RateWindows | None = None,
    ) -> None:
        self._clock = clock
        self._manifest_limit = manifest_limit
        self._event = event
        self._counters = counters
        self._rates = SlidingWindowLog()
        self.windows = windows
        self._audited: dict[str, float] = {}
        self._lock = threading.Lock()

    def hit(
        self,
        principal: str,
        limit: int | None = None,
        window_seconds: float | None = None,
        *,
        default: tuple[int, float] | None = None,
    ) -> RateDecision:
        """Count one request; explicit limits win over the manifest's, then ``default``."""
        manifest = self._manifest_limit(principal)
        base = manifest or default or (DEFAULT_LIMIT, DEFAULT_WINDOW)
        use_limit = limit if limit is not None else base[0]
        window = float(window_seconds) if window_seconds is not None else base[1]
        mono = self._clock.monotonic()
        if self.windows is not None:
            check_limit(use_limit, window)
            now, span = to_micros(self._clock.now()), to_micros(window)
            log, accepted = self.windows.hit(principal, now, use_limit, span)
            decision = decide(log, accepted, now, use_limit, span)
        else:
            with self._lock:
                decision = self._rates.hit(principal, mono, use_limit, window)
        if not decision.allowed:
            self._counters["rate_limited"] += 1
            # One audit event per principal per window, so a flood cannot flood the log.
            if self._audited.get(principal, -1.0) <= mono:
                self._audited[principal] = mono + window
                self._event(
                    principal,
                    EventType.RATE_LIMITED,
                    "rate",
                    Outcome.DENIED,
                    limit=use_limit,
                    window=window,
                    retry_after=decision.retry_after,
                )
        return decision
