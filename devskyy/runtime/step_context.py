"""Which run and step an agent call belongs to, for side effects keyed by run and step.

The workflow engine runs each step's attempts inside ``in_step(run_id, step)``; an agent
that writes outside devskyy's own records (an order, a payment, a backup) reads
``current_step()`` and derives its keys from it, so that a step re-run after a crash finds
what its first attempt wrote instead of writing it again (issue 19.7). Outside a workflow
step (a direct ``call_agent``, a test) it is None and the agent keeps its own ids.

A ``ContextVar`` carries it because agents are called with their declared inputs only
(an extra keyword would be refused by their input models) and ``AgentContext`` is bound
once per agent, not per call. asyncio copies the context into every task the attempt
spawns (timeouts included). A runner that ships attempts to other processes (Dask) must
send ``current_step()`` along and re-enter ``in_step`` on the worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple


class StepRef(NamedTuple):
    """One step of one run (a named tuple: one is made per step)."""

    run_id: str
    step: str

    def key(self, purpose: str, size: int = 20) -> str:
        """A stable hex key for ``purpose`` in this step: the same on every attempt."""
        text = f"{self.run_id}\x00{self.step}\x00{purpose}"
        return hashlib.sha256(text.encode()).hexdigest()[:size]


_CURRENT: ContextVar[StepRef | None] = ContextVar("devskyy_current_step", default=None)


def current_step() -> StepRef | None:
    """The run and step being executed, None outside a workflow step."""
    return _CURRENT.get()


@contextmanager
def in_step(run_id: str, step: str) -> Iterator[StepRef]:
    """Run the body as step ``step`` of run ``run_id``."""
    ref = StepRef(run_id, step)
    token = _CURRENT.set(ref)
    try:
        yield ref
    finally:
        _CURRENT.reset(token)


def enter_step(run_id: str, step: str) -> StepRef:
    """Be step ``step`` of run ``run_id`` for the rest of the current task.

    For a task of its own (the engine's step task): asyncio gives each task a copy of the
    context, so the value goes with the task and needs no reset (nor ``in_step``'s
    generator-based context manager on the per-step path).
    """
    ref = StepRef(run_id, step)
    _CURRENT.set(ref)
    return ref
