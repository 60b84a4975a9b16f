"""Progress an agent reports while it works: "12 of 40 files", "300 items".

An agent calls ``BaseAgent.report_progress(done, total, unit)`` (or ``report`` here).
The report goes, with the run and step it belongs to (``step_context.current_step``), to
the sink the caller installed with ``listening(sink)`` around the run: asyncio copies the
context into every task the run spawns, so the sink reaches each step's attempt without
the engine or the agent's inputs carrying it. Nobody listening: a report costs one
lookup. A sink must be cheap and must not raise; it runs inside the agent's call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from devskyy.runtime.step_context import StepRef, current_step


@dataclass(frozen=True)
class StepProgress:
    """How far one call got: ``done`` of ``total`` (None: unknown) ``unit``."""

    done: int
    total: int | None = None
    unit: str = "items"

    def __str__(self) -> str:
        if self.total is None:
            return f"{self.done} {self.unit}"
        percent = f" ({100 * self.done // self.total}%)" if self.total > 0 else ""
        return f"{self.done}/{self.total} {self.unit}{percent}"


Sink = Callable[[StepRef | None, StepProgress], None]
_SINK: ContextVar[Sink | None] = ContextVar("devskyy_progress_sink", default=None)


def report(done: int, total: int | None = None, unit: str = "items") -> None:
    """Report progress of the current call; a no-op when nobody listens."""
    sink = _SINK.get()
    if sink is not None:
        sink(current_step(), StepProgress(max(0, done), total, unit))


@contextmanager
def listening(sink: Sink) -> Iterator[None]:
    """Send the progress reports of everything started in the body to ``sink``."""
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)
