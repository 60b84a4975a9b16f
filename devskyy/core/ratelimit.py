"""Exact per-principal rate limiting: a sliding-window log (pure: ``now`` is passed in).

Why not the ``limits`` library: its storages read ``time.time()`` themselves (there is
no clock to inject, so tests would have to patch the library or really wait), its
in-memory storage starts a ``threading.Timer`` thread, and its windows are whole
seconds. Its moving-window strategy is the same algorithm as below; GCRA would let a
burst of ``limit`` through and then keep admitting, so up to ``2*limit - 1`` requests
could land in one window. A log of at most ``limit`` accepted times per principal is
exact: the ``limit + 1``-th request inside any window of ``window`` seconds is refused,
and ``retry_after`` is the exact moment the oldest counted request leaves the window.

Several servers share one log per principal in the store (``adapters/rate_store.py``):
the database prunes and appends in one conditional upsert, in whole microseconds (exact in
JSON and in ``bigint[]`` alike), and ``decide`` turns the times it returns into the same
``RateDecision`` the in-process log gives, so one server or ten answer alike.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_LIMIT = 100
DEFAULT_WINDOW = 60.0
MICROS = 1_000_000
"""Shared logs keep times in whole microseconds: integers compare exactly everywhere."""


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


def check_limit(limit: int, window: float) -> None:
    """``ValueError`` unless ``limit >= 1`` and ``window > 0``."""
    if limit < 1 or window <= 0:
        raise ValueError("limit must be >= 1 and window > 0")


def to_micros(seconds: float) -> int:
    """Seconds as whole microseconds (how the shared log stores times)."""
    return round(seconds * MICROS)


def slide(log: Sequence[int], now: int, limit: int, window: int) -> tuple[tuple[int, ...], bool]:
    """One request at ``now`` against a log of accepted times (all in microseconds).

    The log keeps the times inside the window (``> now - window``), sorted; ``now`` is
    appended when fewer than ``limit`` remain. This is what the store's upsert computes in
    SQL; the in-memory twin and the tests use it as the reference.
    """
    kept = tuple(sorted(t for t in log if t > now - window))
    if len(kept) < limit:
        return (*kept, now), True
    return kept, False


def decide(log: Sequence[int], accepted: bool, now: int, limit: int, window: int) -> RateDecision:
    """The decision for a request, from the log after it (``slide``'s result; microseconds)."""
    seconds = window / MICROS
    if accepted:
        reset = (log[0] + window - now) / MICROS if log else 0.0
        return RateDecision(True, limit, seconds, max(0, limit - len(log)), 0.0, reset)
    retry = (log[len(log) - limit] + window - now) / MICROS
    return RateDecision(False, limit, seconds, 0, retry, (log[-1] + window - now) / MICROS)


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
        check_limit(limit, window)
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
