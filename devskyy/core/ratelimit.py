"""Exact per-principal rate limiting: a sliding-window log (pure: ``now`` is passed in).

Why not the ``limits`` library: its storages read ``time.time()`` themselves (there is
no clock to inject, so tests would have to patch the library or really wait), its
in-memory storage starts a ``threading.Timer`` thread, and its windows are whole
seconds. Its moving-window strategy is the same algorithm as below; GCRA would let a
burst of ``limit`` through and then keep admitting, so up to ``2*limit - 1`` requests
could land in one window. A log of at most ``limit`` accepted times per principal is
exact: the ``limit + 1``-th request inside any window of ``window`` seconds is refused,
and ``retry_after`` is the exact moment the oldest counted request leaves the window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

DEFAULT_LIMIT = 100
DEFAULT_WINDOW = 60.0


@dataclass(frozen=True)
class RateDecision:
    """The answer for one request.

    ``remaining`` is how many more requests the window admits now; ``retry_after`` is 0
    when allowed, else the seconds to wait; ``reset_after`` is when the window is empty.
    """

    allowed: bool
    limit: int
    window: float
    remaining: int
    retry_after: float
    reset_after: float

    def __bool__(self) -> bool:
        return self.allowed


class SlidingWindowLog:
    """Accepted request times per key, at most ``limit`` each."""

    def __init__(self, sweep_every: int = 10_000) -> None:
        self._logs: dict[str, deque[float]] = {}
        self._windows: dict[str, float] = {}
        self._sweep_every = sweep_every
        self._hits = 0

    def __len__(self) -> int:
        return len(self._logs)

    def _pruned(self, key: str, now: float, window: float) -> deque[float]:
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = deque()
        horizon = now - window
        while log and log[0] <= horizon:
            log.popleft()
        self._windows[key] = window
        return log

    def hit(self, key: str, now: float, limit: int, window: float) -> RateDecision:
        """Count one request for ``key`` at ``now`` if the window admits it."""
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self._hits += 1
        if self._hits % self._sweep_every == 0:
            self.sweep(now)
        log = self._pruned(key, now, window)
        if len(log) < limit:
            log.append(now)
            return RateDecision(True, limit, window, limit - len(log), 0.0, log[0] + window - now)
        retry = log[len(log) - limit] + window - now
        return RateDecision(False, limit, window, 0, retry, log[-1] + window - now)

    def peek(self, key: str, now: float, limit: int, window: float) -> RateDecision:
        """The state for ``key`` without counting a request."""
        if key not in self._logs:
            return RateDecision(True, limit, window, limit, 0.0, 0.0)
        log = self._pruned(key, now, window)
        if len(log) < limit:
            reset = log[0] + window - now if log else 0.0
            return RateDecision(True, limit, window, limit - len(log), 0.0, reset)
        retry = log[len(log) - limit] + window - now
        return RateDecision(False, limit, window, 0, retry, log[-1] + window - now)

    def reset(self, key: str) -> None:
        """Forget a key's history."""
        self._logs.pop(key, None)
        self._windows.pop(key, None)

    def sweep(self, now: float) -> None:
        """Drop keys whose every request has left its window (bounds memory)."""
        for key in [
            k for k, log in self._logs.items() if not log or log[-1] <= now - self._windows[k]
        ]:
            del self._logs[key]
            del self._windows[key]
