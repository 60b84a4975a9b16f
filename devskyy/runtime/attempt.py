"""The one attempt executor: every piece of work runs its attempts here.

A ``with_healing`` method, an orchestrator call (``call_agent``, ``call_with_retry``,
``execute_task``'s steps) and a workflow step all describe their work as a ``Plan`` and
hand it to ``AttemptExecutor``. One attempt (``once``):

1. waits for a slot of the priority gate, if the plan has one (held for the attempt
   only, never across a retry's sleep);
2. refuses with ``StepTimeout`` when the plan's deadline (a workflow's timeout) has passed;
3. asks every breaker of the plan (a step's own first, then the agent's) for admission;
   the first refusal raises ``CircuitOpen`` and gives back the probe slots already taken;
4. runs the call with ``asyncio.timeout``'s semantics (the plan's timeout, never past its
   deadline, on the one timer below):
   expiry raises ``StepTimeout``; an agent's own ``TimeoutError`` stays its own;
5. classifies the outcome once (``RetryPolicy.classify``) and settles it: every admitted
   breaker counts a failure only for ``Fault.AGENT``, a success for ``Fault.REQUEST`` and
   for results, nothing for cancellation; the plan's ``observe`` gets the seconds and the
   outcome name (``ok``, ``error``, ``answered``, ``cancelled``, or ``rejected`` when a
   breaker refused).

``run`` is THE retry loop of devskyy (``grep`` finds no other): after a failed attempt
the policy decides (``DoSleep``/``DoAttempt``/``GiveUp``); a retry whose sleep would end
past the deadline is not tried. ``on_retry`` is told before the sleep, ``before_attempt``
after it; sleeps go through the injected clock. The result is an ``Attempted`` value.

Timeouts are enforced by the event loop: a hung call must be interrupted even when the
injected clock is a fake one. Durations and breaker times come from the injected clock.
The timeouts of an executor's attempts on one loop share ONE loop timer (``_Watch``), with
the semantics of ``asyncio.timeout``: ``asyncio.timeout`` costs a timer handle per attempt
(a Python object, ordered in Python in the loop's heap, cancelled again at once by a fast
attempt), several times what a no-op step costs otherwise.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, Protocol, TypeVar

from devskyy.adapters.clock import Clock
from devskyy.core.breaker import Breaker, BreakerState
from devskyy.core.retry import DoSleep, Fault, GiveUp, RetryPolicy
from devskyy.errors import CircuitOpen, StepTimeout
from devskyy.model.manifests import Priority
from devskyy.runtime.queue import PriorityGate

T = TypeVar("T")
CLOSED = BreakerState.CLOSED

Observer = Callable[[float, str, BaseException | None], None]
"""Told after every attempt: seconds, outcome name, the error (None on success)."""


class BreakerCell(Protocol):
    """Where a breaker lives between attempts (an agent's entry, a step's cell)."""

    breaker: Breaker

    def refused(self, retry_after: float) -> str:
        """The ``CircuitOpen`` message when this breaker refuses a call."""
        ...


class StepBreaker:
    """A breaker cell of its own (a workflow step's ``circuitBreaker``)."""

    __slots__ = ("breaker", "label")

    def __init__(self, breaker: Breaker, label: str) -> None:
        self.breaker = breaker
        self.label = label

    def refused(self, retry_after: float) -> str:
        return f"{self.label}: circuit open; retry after {retry_after:.1f}s"


class Attempted(NamedTuple, Generic[T]):
    """How ``run`` ended: a result, or the last error and why it stopped.

    A named tuple (immutable, and cheaper to build than a frozen dataclass: one per step).
    """

    result: T | None
    error: Exception | None
    attempts: int
    reason: str

    def describe_error(self) -> str:
        if self.error is None:
            return ""
        return f"{type(self.error).__name__}: {self.error} ({self.reason})"


@dataclass(slots=True)
class Plan:
    """How to attempt one piece of work (see the module docstring).

    Not frozen, for speed (one is built per call); nothing changes a plan once built.
    """

    label: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None
    breakers: Sequence[BreakerCell] = ()
    gate: PriorityGate | None = None
    priority: Priority = Priority.MEDIUM
    rank: int = 0
    deadline: float | None = None
    deadline_reason: str = "the deadline leaves no time to retry"
    # The StepTimeout message once the deadline has passed; a callable makes it only then
    # (a plan shared by many workflow steps names the step whose attempt it refuses).
    deadline_error: str | Callable[[], str] | None = None
    observe: Observer | None = None
    on_retry: Callable[[int, Exception, float], None] | None = None
    before_attempt: Callable[[int], None] | None = None


class AttemptExecutor:
    """Runs attempts of plans with one clock and one random source."""

    def __init__(self, clock: Clock, random_value: Callable[[], float] = random.random) -> None:
        self.clock = clock
        self.random = random_value
        # The timeouts' one timer, on the loop of the latest timed attempt (``once`` makes
        # a new one when the loop changed).
        self._watch: _Watch | None = None

    async def once(  # noqa: PLR0915 - one coroutine for the attempt (see the docstring)
        self, call: Callable[[], Awaitable[T]], plan: Plan
    ) -> T:
        """ONE attempt of ``call`` under ``plan``; raises what the attempt raised.

        One coroutine for the whole attempt (gate, deadline, breakers, timeout, outcome):
        every step of every run goes through it, and each coroutine layer costs.
        """
        gate = plan.gate
        if gate is not None and not gate.try_acquire():
            await gate.acquire(plan.priority, plan.rank)
        try:
            clock = self.clock
            now = clock.monotonic()
            limit = plan.timeout if plan.deadline is None else _limit(plan, now)
            breakers = plan.breakers
            # Breakers that are all closed admit every call unchanged (the usual case).
            admitted = breakers if _all_closed(breakers) else _admit(plan, now)
            outcome = "cancelled"
            error: BaseException | None = None
            timer: list[object] | None = None  # this attempt's entry in the loop's timer
            task: asyncio.Task[object] | None = None
            if limit is not None:
                # asyncio.timeout's semantics on the executor's one timer (see _Watch):
                # only our own cancel becomes StepTimeout.
                task = asyncio.current_task()
                assert task is not None  # an attempt always runs in a task
                loop = task.get_loop()
                found = self._watch
                watch = found if found is not None and found.loop is loop else _Watch(loop)
                self._watch = watch
                cancelling = task.cancelling()
                timer = watch.add(loop.time() + limit, task)
            try:
                result = await call()
                outcome = "ok"
                return result
            except asyncio.CancelledError as exc:
                if timer is not None and timer[3] == _EXPIRED:
                    timer[3] = _DONE
                    assert task is not None  # set with the timer
                    if task.uncancel() <= cancelling:  # else cancelled from outside too
                        error = StepTimeout(f"{plan.label} did not answer within {limit:g}s")
                        outcome = Fault.AGENT.outcome
                        raise error from None
                outcome, error = plan.retry.classify(exc).outcome, exc
                raise
            except BaseException as exc:
                outcome, error = plan.retry.classify(exc).outcome, exc
                raise  # an agent's own TimeoutError included: not ours
            finally:
                if timer is not None:
                    watch.stop(timer)
                end = clock.monotonic()
                if admitted:
                    _settle(admitted, outcome, end)
                if plan.observe is not None:
                    _observe(plan.observe, end - now, outcome, error)
        finally:
            if gate is not None:
                gate.release()

    async def run(self, call: Callable[[], Awaitable[T]], plan: Plan) -> Attempted[T]:
        """Attempts until success or the policy gives up (THE retry loop)."""
        attempt = 1
        while True:
            try:
                result = await self.once(call, plan)
            except Exception as exc:
                delay, reason = self.decide(plan, attempt, exc)
                if reason is not None:
                    return Attempted(None, exc, attempt, reason)
                if plan.on_retry is not None:
                    plan.on_retry(attempt, exc, delay)
                if delay > 0:
                    await self.clock.sleep(delay)
                attempt += 1
                if plan.before_attempt is not None:
                    plan.before_attempt(attempt)
            else:
                return Attempted(result, None, attempt, "")

    def decide(self, plan: Plan, attempt: int, error: Exception) -> tuple[float, str | None]:
        """The delay before the next attempt, or why there is none (the give-up reason)."""
        decision = plan.retry.decide(attempt, error, self.random())
        if isinstance(decision, GiveUp):
            return 0.0, decision.reason
        delay = decision.seconds if isinstance(decision, DoSleep) else 0.0
        if plan.deadline is not None and self.clock.monotonic() + delay >= plan.deadline:
            return 0.0, plan.deadline_reason
        return delay, None


_ACTIVE, _DONE, _EXPIRED = 0, 1, 2


class _Watch:
    """The timeouts of the attempts on one event loop, on one loop timer.

    An attempt's deadline is a list ``[when, seq, task, state]`` in a heap; the loop timer
    is set at the earliest deadline and moved only when an earlier one arrives (rare: a
    later attempt of the same timeout ends later). When it fires, every due attempt still
    running is cancelled (``_EXPIRED``). A finished attempt is marked ``_DONE`` and left in
    the heap; the heap is rebuilt without them once they are most of it, so its size stays
    bounded by the attempts running, not by the attempts run.
    """

    __slots__ = ("at", "done", "handle", "heap", "loop", "seq")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.heap: list[list[object]] = []
        self.handle: asyncio.TimerHandle | None = None
        self.at = math.inf
        self.done = 0
        self.seq = itertools.count()

    def add(self, when: float, task: asyncio.Task[object]) -> list[object]:
        entry: list[object] = [when, next(self.seq), task, _ACTIVE]
        heapq.heappush(self.heap, entry)
        if when < self.at:
            self._arm(when)
        return entry

    def stop(self, entry: list[object]) -> None:
        """The attempt of ``entry`` ended; one that expired as it finished keeps its
        result (the cancel we sent is taken back)."""
        if entry[3] == _EXPIRED:
            entry[2].uncancel()  # type: ignore[attr-defined]
        self.finish(entry)

    def finish(self, entry: list[object]) -> None:
        if entry[3] != _ACTIVE:
            return
        entry[3] = _DONE
        self.done += 1
        if self.done > 64 and self.done * 2 > len(self.heap):
            self.heap = [e for e in self.heap if e[3] == _ACTIVE]
            heapq.heapify(self.heap)
            self.done = 0

    def _arm(self, when: float) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.at = when
        self.handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self.handle, self.at = None, math.inf
        heap, now = self.heap, self.loop.time()
        while heap and (heap[0][3] != _ACTIVE or heap[0][0] <= now):  # type: ignore[operator]
            entry = heapq.heappop(heap)
            if entry[3] == _ACTIVE:
                entry[3] = _EXPIRED
                entry[2].cancel()  # type: ignore[attr-defined]
            else:
                self.done -= 1
        if heap:
            self._arm(heap[0][0])  # type: ignore[arg-type]


def _all_closed(breakers: Sequence[BreakerCell]) -> bool:
    """Whether every breaker is closed (a loop: no generator per attempt, as all() has)."""
    for cell in breakers:  # noqa: SIM110 - see the docstring
        if cell.breaker.state is not CLOSED:
            return False
    return True


def _settle(admitted: Sequence[BreakerCell], outcome: str, end: float) -> None:
    """Every admitted breaker counts the outcome: a failure only for ``Fault.AGENT``
    (``error``), nothing for cancellation, a success otherwise."""
    for cell in admitted:
        breaker = cell.breaker
        if outcome == "ok" and breaker.state is CLOSED and not breaker.failures:
            continue  # a success changes nothing here (the usual case)
        if outcome == "error":
            cell.breaker = breaker.on_failure(end)
        elif outcome == "cancelled":
            cell.breaker = breaker.release()
        else:
            cell.breaker = breaker.on_success(end)


def _observe(
    observe: Observer | None, seconds: float, outcome: str, error: BaseException | None
) -> None:
    """Tell the plan's observer; metrics must never fail a call (a plain try: this runs
    once per attempt, where ``contextlib.suppress`` would build an object each time)."""
    if observe is None:
        return
    try:  # noqa: SIM105 - see the docstring
        observe(seconds, outcome, error)
    except Exception:  # noqa: S110 - deliberately ignored, see the docstring
        pass


def _limit(plan: Plan, now: float) -> float | None:
    """The attempt's time limit: the plan's timeout, never past its deadline;
    ``StepTimeout`` when the deadline has passed."""
    limit = plan.timeout
    if plan.deadline is not None:
        left = plan.deadline - now
        if left <= 0:
            error = plan.deadline_error
            if callable(error):
                error = error()
            raise StepTimeout(error or f"{plan.label}: the deadline has passed")
        limit = None if limit is None else min(limit, left)
    return limit


def _admit(plan: Plan, now: float) -> list[BreakerCell]:
    """Ask each breaker in turn; on a refusal give back the probes taken, tell the
    observer (``rejected``) and raise."""
    admitted: list[BreakerCell] = []
    for cell in plan.breakers:
        if cell.breaker.state is CLOSED:  # admits every call, unchanged (the usual case)
            admitted.append(cell)
            continue
        admission = cell.breaker.admit(now)
        cell.breaker = admission.breaker
        if not admission.allowed:
            for taken in admitted:
                taken.breaker = taken.breaker.release()
            refusal = CircuitOpen(cell.refused(admission.retry_after))
            refusal.refused_by = cell
            _observe(plan.observe, 0.0, "rejected", refusal)
            raise refusal
        admitted.append(cell)
    return admitted
