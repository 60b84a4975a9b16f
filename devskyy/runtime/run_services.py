"""What a run session needs from its engine, and the errors it reports (no behaviour).

``AgentCaller`` is what the engine needs from the orchestrator (one attempt, and name
resolution); ``RunServices`` is what a run session (``workflow_execution``) needs from the
engine (``workflows``). Both sides import these Protocols from here, so the engine and its
run session do not import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from devskyy.adapters.clock import Clock
from devskyy.adapters.run_store import RunStore
from devskyy.core.retry import RetryPolicy
from devskyy.errors import DevskyyError, PermanentError
from devskyy.model.manifests import Agent, Priority
from devskyy.model.runs import RunRecord, StepRecord
from devskyy.runtime.attempt import AttemptExecutor, StepBreaker

STEPS_FAILED = "step(s) failed:"
"""How a run's error starts when steps failed (``to_guide_shape`` leaves it out)."""

ProgressListener = Callable[[RunRecord, StepRecord], None]


class AgentCaller(Protocol):
    """What the engine needs from the orchestrator: one attempt, and name resolution."""

    async def call_agent(
        self,
        name: str,
        kwargs: dict[str, Any],
        *,
        timeout: float | None = None,
        priority: Priority | None = None,
    ) -> dict[str, Any]:
        """Run one attempt on agent ``name`` (admitted by ``priority``); StepTimeout /
        CircuitOpen on those failures."""
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

    def agent_defaults(self, name: str) -> tuple[RetryPolicy | None, float | None]:
        """The agent's declared retry policy and timeout (None: not declared)."""
        ...


class ProgressListenerError(DevskyyError):
    """The progress listener raised: the run is recorded failed with this error."""


class NotSerializable(PermanentError):
    """A step's input or output is not a JSON value (the step-runner seam needs JSON)."""


def describe(exc: BaseException) -> str:
    """``Type: message`` (or the type alone), as step and run errors are recorded."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
