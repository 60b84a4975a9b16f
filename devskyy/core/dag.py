"""DAG progress: the state machine a workflow executor drives (pure).

The shape is dagster's ``ActiveExecution``: the executor asks ``advance()`` which steps
may start, tells the machine what happened (``start``, ``succeed``, ``fail``,
``retry_wait``, ``skip``) and repeats until ``done``. The machine decides, the executor
acts; no clock, no I/O (a retry's due time comes in as a number).

A step is decided once every one of its ``needs`` is final (succeeded, failed or
skipped), by its ``trigger`` (Airflow's trigger rules):

* ``all_succeeded`` (default): ready when every need succeeded; skipped otherwise
  (a skip propagates down every chain of ``all_succeeded`` steps);
* ``any_failed``: ready only when some need failed (compensation), skipped otherwise;
* ``always``: ready whatever the needs' outcomes (cleanup).

With ``fail_fast``, once any step has failed no new ``all_succeeded`` step is launched
(it is skipped with reason ``fail-fast``); ``any_failed`` and ``always`` steps still run
and steps already running finish. A step whose ``when`` is false is skipped by the
executor through ``skip``.

Each decision is incremental (a counter of unfinished needs per step), so a 1,000-step
chain costs O(steps + edges), not O(steps²). ``restore`` rebuilds the machine from the
recorded step events of an interrupted run: final outcomes are kept, anything that was
in flight goes back to pending (its attempt count is kept) and is launched again even
under ``fail_fast``, since it had been launched before the failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from devskyy.model.manifests import Trigger, Workflow
from devskyy.model.runs import (
    FAILED,
    PENDING,
    READY,
    RETRY_WAIT,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    StepEvent,
    StepStatus,
)

ALL_SUCCEEDED = Trigger.ALL_SUCCEEDED  # a module constant, as the statuses (model.runs)

FAIL_FAST = "fail-fast: an earlier step failed"


class DagError(ValueError):
    """The steps do not form a DAG (unknown need, duplicate name, cycle) or a bad move."""


class StepNode(NamedTuple):
    """A step as the state machine sees it: its name, needs and trigger.

    A named tuple (immutable, and built several times faster than a frozen dataclass:
    one per step of every run)."""

    name: str
    needs: tuple[str, ...] = ()
    trigger: Trigger = Trigger.ALL_SUCCEEDED


@dataclass(frozen=True)
class StepProgress:
    """A snapshot of one step's progress."""

    status: StepStatus
    attempts: int = 0
    retry_at: float | None = None
    reason: str | None = None


class Advance(NamedTuple):
    """What ``advance`` decided: steps now ready, and steps skipped (with the reason).

    A named tuple: one is built per turn of a run's loop."""

    ready: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()


_NOTHING = Advance()


def nodes_of(workflow: Workflow) -> tuple[StepNode, ...]:
    """The state-machine nodes of a Workflow manifest, in manifest order."""
    return tuple(StepNode(s.name, tuple(s.needs), s.trigger) for s in workflow.spec.steps)


class DagProgress:
    """Progress of one run through its DAG of steps (see the module docstring)."""

    def __init__(self, nodes: Sequence[StepNode], *, fail_fast: bool = True) -> None:
        self.fail_fast = fail_fast
        self._nodes = {n.name: n for n in nodes}
        if len(self._nodes) != len(nodes):
            raise DagError("duplicate step names")
        self._order = [n.name for n in nodes]
        self._dependents: dict[str, list[str]] = {n: [] for n in self._order}
        self._waiting: dict[str, int] = {}
        for node in nodes:
            needs = node.needs if len(node.needs) < 2 else tuple(dict.fromkeys(node.needs))
            for need in needs:
                if need not in self._nodes:
                    raise DagError(f"step {node.name!r} needs unknown step {need!r}")
                self._dependents[need].append(node.name)
            self._waiting[node.name] = len(needs)
        _check_acyclic(self._order, self._nodes, self._dependents, self._waiting)
        self._status = dict.fromkeys(self._order, PENDING)
        self._attempts = dict.fromkeys(self._order, 0)
        self._retry_at: dict[str, float] = {}
        self._reason: dict[str, str] = {}
        self._candidates = [n.name for n in nodes if not n.needs]
        self._unfinished = len(self._order)
        # Steps that had started before an interruption: fail-fast never cancels them.
        self._relaunch: set[str] = set()
        self.failed_any = False

    @classmethod
    def from_workflow(cls, workflow: Workflow) -> DagProgress:
        """A fresh machine for a Workflow manifest (its ``failFast`` included)."""
        return cls(nodes_of(workflow), fail_fast=workflow.spec.fail_fast)

    @classmethod
    def restore(
        cls, nodes: Sequence[StepNode], events: Iterable[StepEvent], *, fail_fast: bool = True
    ) -> DagProgress:
        """Rebuild from recorded events: final outcomes stay, in-flight steps go pending."""
        dag = cls(nodes, fail_fast=fail_fast)
        last: dict[str, StepEvent] = {}
        for event in events:
            if event.step not in dag._nodes:
                raise DagError(f"event for unknown step {event.step!r}")
            last[event.step] = event
            dag._attempts[event.step] = max(dag._attempts[event.step], event.attempt)
        for name, event in last.items():
            if event.status.terminal:
                dag._status[name] = event.status
                if event.status is SKIPPED and event.error:
                    dag._reason[name] = event.error
            else:
                dag._relaunch.add(name)
        dag._recount()
        return dag

    def _recount(self) -> None:
        terminal = {n for n, s in self._status.items() if s.terminal}
        self._unfinished = len(self._order) - len(terminal)
        self.failed_any = any(s is FAILED for s in self._status.values())
        self._candidates = []
        for name in self._order:
            needs = set(self._nodes[name].needs)
            self._waiting[name] = len(needs - terminal)
            if name not in terminal and self._waiting[name] == 0:
                self._candidates.append(name)

    # -- queries -------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """Step names in manifest order."""
        return tuple(self._order)

    def node(self, name: str) -> StepNode:
        return self._nodes[name]

    def status(self, name: str) -> StepStatus:
        return self._status[name]

    def attempts(self, name: str) -> int:
        return self._attempts[name]

    def progress(self, name: str) -> StepProgress:
        """A snapshot of one step."""
        return StepProgress(
            self._status[name],
            self._attempts[name],
            self._retry_at.get(name),
            self._reason.get(name),
        )

    def snapshot(self) -> dict[str, StepProgress]:
        """Every step's progress, in manifest order."""
        return {name: self.progress(name) for name in self._order}

    def in_flight(self) -> tuple[str, ...]:
        """Steps that are ready, running or waiting for a retry."""
        busy = (READY, RUNNING, RETRY_WAIT)
        return tuple(n for n in self._order if self._status[n] in busy)

    @property
    def done(self) -> bool:
        """True when every step is succeeded, failed or skipped."""
        return self._unfinished == 0

    @property
    def succeeded(self) -> bool:
        """True when done and no step failed."""
        return self.done and not self.failed_any

    # -- decisions -----------------------------------------------------------------------

    def advance(self) -> Advance:
        """Decide every step whose needs are final: ready or skipped (skips cascade)."""
        if not self._candidates:
            return _NOTHING  # a run's loop asks every turn; most turns decide nothing
        ready: list[str] = []
        skipped: list[tuple[str, str]] = []
        status = self._status
        while self._candidates:
            batch, self._candidates = self._candidates, []
            for name in batch:
                if status[name] is not PENDING:
                    continue
                node = self._nodes[name]
                reason: str | None = None
                if node.trigger is not ALL_SUCCEEDED or self.failed_any:
                    reason = self._skip_reason(node)
                else:  # the common case: every need succeeded, nothing failed yet
                    for need in node.needs:
                        if status[need] is not SUCCEEDED:
                            reason = self._skip_reason(node)
                            break
                if reason is None:
                    status[name] = READY
                    ready.append(name)
                else:
                    self._finish(name, SKIPPED)
                    self._reason[name] = reason
                    skipped.append((name, reason))
        return Advance(tuple(ready), tuple(skipped))

    def _skip_reason(self, node: StepNode) -> str | None:
        """Why a step whose needs are final is skipped (None: it is ready). ``advance``
        decides the common case (every need succeeded, nothing failed) without it."""
        status = self._status
        outcomes = [(need, status[need]) for need in node.needs]
        failed = [n for n, s in outcomes if s is FAILED]
        if node.trigger is Trigger.ALWAYS:
            return None
        if node.trigger is Trigger.ANY_FAILED:
            return None if failed else "none of its needs failed (trigger any_failed)"
        if failed:
            return f"needs failed: {', '.join(failed)}"
        skipped = [n for n, s in outcomes if s is SKIPPED]
        if skipped:
            return f"needs skipped: {', '.join(skipped)}"
        if self.fail_fast and self.failed_any and node.name not in self._relaunch:
            return FAIL_FAST
        return None

    # -- moves ---------------------------------------------------------------------------

    def start(self, name: str) -> int:
        """A ready (or retry-waiting) step starts an attempt; returns the attempt number."""
        now = self._status.get(name)
        if now is not READY and now is not RETRY_WAIT:
            self._expect(name, READY, RETRY_WAIT)  # raises
        self._status[name] = RUNNING
        if self._retry_at:
            self._retry_at.pop(name, None)
        self._attempts[name] += 1
        return self._attempts[name]

    def retry_wait(self, name: str, at: float) -> None:
        """The running attempt failed; the next one is due at ``at``."""
        self._expect(name, RUNNING)
        self._status[name] = RETRY_WAIT
        self._retry_at[name] = at

    def succeed(self, name: str) -> None:
        """The running step succeeded."""
        if self._status.get(name) is not RUNNING:
            self._expect(name, RUNNING)  # raises
        self._finish(name, SUCCEEDED)

    def fail(self, name: str, reason: str | None = None) -> None:
        """The step failed for good (running, waiting for a retry, or never started)."""
        self._expect(name, RUNNING, RETRY_WAIT, READY)
        self._finish(name, FAILED)
        self.failed_any = True
        if reason:
            self._reason[name] = reason

    def skip(self, name: str, reason: str) -> None:
        """A ready step is skipped by the executor (its ``when`` is false)."""
        self._expect(name, READY)
        self._finish(name, SKIPPED)
        self._reason[name] = reason

    def _expect(self, name: str, *allowed: StepStatus) -> None:
        if name not in self._status:
            raise DagError(f"unknown step {name!r}")
        if self._status[name] not in allowed:
            wanted = " or ".join(s.value for s in allowed)
            raise DagError(f"step {name!r} is {self._status[name].value}, not {wanted}")

    def _finish(self, name: str, status: StepStatus) -> None:
        self._status[name] = status
        if self._retry_at:
            self._retry_at.pop(name, None)
        self._unfinished -= 1
        for dependent in self._dependents[name]:
            self._waiting[dependent] -= 1
            if self._waiting[dependent] == 0:
                self._candidates.append(dependent)


def _check_acyclic(
    order: list[str],
    nodes: dict[str, StepNode],
    dependents: dict[str, list[str]],
    waiting: dict[str, int],
) -> None:
    """Raise ``DagError`` naming a cycle as a path (``a -> b -> a``).

    Kahn's pass over the counts of distinct needs (one look at each edge) decides; only
    a graph that has a cycle is walked again to name it (iteratively: deep chains)."""
    left = dict(waiting)
    free = [name for name in order if not left[name]]
    seen = 0
    while free:
        name = free.pop()
        seen += 1
        for dependent in dependents[name]:
            left[dependent] -= 1
            if not left[dependent]:
                free.append(dependent)
    if seen == len(order):
        return
    state: dict[str, int] = {}
    for root in order:
        if root in state:
            continue
        path: list[str] = [root]
        stack = [iter(nodes[root].needs)]
        state[root] = 1
        while stack:
            need = next(stack[-1], None)
            if need is None:
                stack.pop()
                state[path.pop()] = 2
            elif state.get(need) == 1:
                cycle = [*path[path.index(need) :], need]
                raise DagError("step cycle: " + " -> ".join(cycle))
            elif need not in state:
                state[need] = 1
                path.append(need)
                stack.append(iter(nodes[need].needs))
