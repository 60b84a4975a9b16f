"""What a run session needs from its engine, and the errors it reports (no behaviour).

``AgentCaller`` is what the engine needs from the orchestrator (an attempt plan, the step
runner, and name resolution); ``RunServices`` is what a run session
(``workflow_execution``) needs from the engine (``workflows``). Both sides import these
Protocols from here, so the engine and its run session do not import each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from devskyy.adapters.clock import Clock
from devskyy.adapters.run_store import RunStore
from devskyy.core.retry import RetryPolicy
from devskyy.errors import DevskyyError, PermanentError
from devskyy.model.manifests import Agent, Priority
from devskyy.model.runs import RunRecord, StepRecord
from devskyy.runtime.attempt import AttemptExecutor, BreakerCell, Plan, StepBreaker
from devskyy.runtime.step_runner import StepRunner

STEPS_FAILED = "step(s) failed:"
"""How a run's error starts when steps failed (``to_guide_shape`` leaves it out)."""

ProgressListener = Callable[[RunRecord, StepRecord], None]


class AgentCaller(Protocol):
    """What the engine needs from the orchestrator: how to attempt a call of an agent
    (its breaker, timeout, priority slot and metrics, as a ``Plan`` the engine completes
    with the step's own retry, breaker and deadline), the runner that makes ONE attempt,
    and name resolution. The engine runs the plan's attempts through its one attempt
    executor: one plan, one layer, per step."""

    @property
    def runner(self) -> StepRunner:
        """Makes ONE attempt of a call (no retry, breaker or timeout of its own)."""
        ...

    def plan(
        self,
        name: str,
        *,
        timeout: float | None = None,
        priority: Priority | None = None,
        retry: RetryPolicy | None = None,
        breakers: tuple[BreakerCell, ...] = (),
        **hooks: Any,
    ) -> Plan:
        """How to attempt agent ``name``: ``breakers`` first, then the agent's own;
        ``NotFound`` when it is not registered."""
        ...

    def generation(self) -> int:
        """A number that changes whenever the registered agents change: a run session
        reuses the plan it made for an agent until it does."""
        ...

    def ready(self, name: str) -> asyncio.Event | None:
        """While agent ``name`` is still starting (in the background), the event set when
        its start has ended; None when it is not starting."""
        ...

    def resolve(self, capability: str) -> str:
        """The agent to call for a capability; ``NotFound`` when none provides it."""
        ...


class RunServices(Protocol):
    """What a run session needs from its engine."""

    caller: AgentCaller
    store: RunStore
    clock: Clock
    executor: AttemptExecutor
    commit_interval: float
    heartbeat_interval: float
    breakers: dict[tuple[str, str], StepBreaker]

    def agent_manifest(self, name: str) -> Agent | None:
        """The Agent manifest of ``name`` in live state, if any."""
        ...

    def agent_defaults(
        self, name: str, manifest: Agent | None
    ) -> tuple[RetryPolicy | None, float | None]:
        """The agent's declared retry policy and timeout (None: not declared), from its
        manifest (``agent_manifest``, looked up once by the caller) or the orchestrator."""
        ...


class ProgressListenerError(DevskyyError):
    """The progress listener raised: the run is recorded failed with this error."""


class NotSerializable(PermanentError):
    """A step's input or output is not a JSON value (the step-runner seam needs JSON)."""


def describe(exc: BaseException) -> str:
    """``Type: message`` (or the type alone), as step and run errors are recorded."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
