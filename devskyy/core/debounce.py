"""Debouncing file-event hints into reconcile passes (pure; time is an argument).

File events are only hints (docs/architecture.md): a burst of saves becomes one pass. A pass is
due once no hint has arrived for ``quiet`` seconds, or ``max_wait`` seconds after the
first hint of the burst, so a file rewritten continuously cannot starve reconciling.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Debounce:
    """Hints gathered since the last pass."""

    first_at: float | None = None
    last_at: float | None = None
    paths: frozenset[str] = frozenset()

    @property
    def pending(self) -> bool:
        return self.first_at is not None


def hint(state: Debounce, path: str, now: float) -> Debounce:
    """Record a file event at ``now``."""
    first = state.first_at if state.first_at is not None else now
    return Debounce(first, now, state.paths | {path})


def deadline(state: Debounce, quiet: float, max_wait: float) -> float | None:
    """When the pending pass becomes due (None when nothing is pending)."""
    if state.first_at is None or state.last_at is None:
        return None
    return min(state.last_at + quiet, state.first_at + max_wait)


def due(state: Debounce, now: float, quiet: float, max_wait: float) -> bool:
    """True when a pass should run now."""
    when = deadline(state, quiet, max_wait)
    return when is not None and now >= when


def next_wakeup(
    state: Debounce, last_pass_at: float, interval: float, quiet: float, max_wait: float
) -> float:
    """The earliest of the debounce deadline and the periodic resync."""
    resync = last_pass_at + interval
    pending = deadline(state, quiet, max_wait)
    return resync if pending is None else min(resync, pending)
