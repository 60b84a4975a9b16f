"""``BaseAgent``: the guide's self-healing agent base class (BaseAgent V2).

Subclasses implement ``execute_core_function(**kwargs)`` (abstract) and usually
``initialize()``. The registry builds an agent from its manifest in this order:

1. ``agent = cls()`` (the guide's classes take no arguments);
2. ``agent.bind(AgentContext(...))``: the manifest name, the validated ``config``,
   the store engine, the clock and the retry policy of the manifest;
3. ``await agent.initialize()`` must return True before the agent takes traffic.

A class may declare ``config_model`` (a pydantic model): the manifest's ``spec.config``
is validated with it and stored in ``self.config``; without one, ``self.config`` is the
plain dict. It may declare ``input_model`` (the pydantic model of its inputs) and
``consumes`` (``core.tasks.Consumes``: inputs taken from an upstream capability's output):
``execute_task`` passes an agent only the parameters its input model declares, plus what
it consumes from the agents it depends on (``inputs(capability)``).

Status (``BaseAgent.AgentStatus``): INITIALIZING until ``initialize()`` succeeds;
``@BaseAgent.with_healing`` (attempts through ``runtime.attempt``, the one retry loop)
sets RECOVERING while it retries, FAILED when the retry policy
gives up after a failure it tried to heal (or on the last allowed attempt), and HEALTHY
again after a success. DEGRADED replaces HEALTHY while an anomaly alarm is on.

Tracking: every call of ``execute_core_function`` (a subclass's definition is wrapped
when the class is created, so direct calls count too) records its duration (from the
context clock's monotonic time) and outcome in a ``devskyy.core.stats.CallTracker``:
calls, errors, mean and p95 response time and success rate over the last
``metrics_window`` calls (100), plus two anomaly detectors documented in
``devskyy.core.stats``: a rolling z-score on latency (threshold 3.0 over the window,
at least 20 calls of history) and an EWMA control chart on the error rate (alpha 0.1,
3-sigma limit). ``health_check()`` reports all of it.
"""

from __future__ import annotations

import abc
import functools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, ParamSpec, TypeVar, cast

from pydantic import BaseModel

from devskyy.adapters.clock import Clock, SystemClock
from devskyy.core.retry import RetryPolicy
from devskyy.core.stats import CallTracker
from devskyy.core.tasks import AgentInputs, Consumes
from devskyy.errors import RetriesExhausted
from devskyy.model.manifests import RetrySpec
from devskyy.runtime.attempt import AttemptExecutor, Plan

if TYPE_CHECKING:
    from devskyy.adapters.engine import Engine

P = ParamSpec("P")
R = TypeVar("R")
A = TypeVar("A", bound="BaseAgent")

_TRACKED = "__devskyy_tracked__"


@dataclass
class AgentContext:
    """What the runtime hands an agent before ``initialize()``.

    ``random`` supplies the uniform values that jitter retry delays (a seam for tests).
    """

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    engine: Engine | None = None
    clock: Clock = field(default_factory=SystemClock)
    retry: RetrySpec = field(default_factory=RetrySpec)
    state_dir: Path = field(default_factory=lambda: Path(".devskyy"))
    random: Callable[[], float] = field(default=random.random, repr=False)


class AgentStatus(StrEnum):
    """The guide's status levels."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    RECOVERING = "recovering"
    FAILED = "failed"
    INITIALIZING = "initializing"


# Read after every call (``_settle``): module constants, not ``AgentStatus.X`` through the
# Enum metaclass's ``__getattr__`` hook (Python 3.11).
_HEALTHY, _DEGRADED = AgentStatus.HEALTHY, AgentStatus.DEGRADED
_SETTLING = (_HEALTHY, _DEGRADED)


def _tracked(
    fn: Callable[..., Awaitable[dict[str, Any]]],
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Wrap ``execute_core_function`` so that every call is measured and recorded.

    Only the wrapper of the method the agent's class resolves records: a subclass's
    definition that calls ``super().execute_core_function`` reaches its parent's wrapper,
    which then only calls through (one call, counted once).
    """

    @functools.wraps(fn)
    async def wrapper(self: BaseAgent, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if type(self).execute_core_function is not wrapper:  # reached through super()
            return await fn(self, *args, **kwargs)
        clock = self.context.clock
        started = clock.monotonic()
        ok = False
        try:
            result = await fn(self, *args, **kwargs)
            ok = True
            return result
        finally:
            self.record_call(clock.monotonic() - started, ok)

    setattr(wrapper, _TRACKED, True)
    return wrapper


class BaseAgent(abc.ABC):
    """Base class of every agent. See the module docstring for the life cycle."""

    AgentStatus: ClassVar[type[AgentStatus]] = AgentStatus
    config_model: ClassVar[type[BaseModel] | None] = None
    input_model: ClassVar[type[BaseModel] | None] = None
    consumes: ClassVar[tuple[Consumes, ...]] = ()
    metrics_window: ClassVar[int] = 100

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("execute_core_function")
        if (
            own is not None
            and callable(own)
            and not getattr(own, "__isabstractmethod__", False)
            and not getattr(own, _TRACKED, False)
        ):
            # Setting the attribute after class creation keeps ``abc``'s bookkeeping right.
            setattr(cls, "execute_core_function", _tracked(own))  # noqa: B010

    def __init__(self, agent_name: str, version: str = "1.0.0") -> None:
        self.agent_name = agent_name
        self.version = version
        self.status: AgentStatus = AgentStatus.INITIALIZING
        self.context = AgentContext(name=agent_name)
        self.config: Any = {}
        self.tracker = CallTracker(window=type(self).metrics_window)
        self.healing: dict[str, int] = {"retries": 0, "recoveries": 0, "gave_up": 0}
        self.last_error: str | None = None

    @property
    def name(self) -> str:
        """The manifest name once bound, else the display name."""
        return self.context.name

    @property
    def clock(self) -> Clock:
        return self.context.clock

    def bind(self, context: AgentContext) -> None:
        """Receive the manifest name, config, store and clock (before ``initialize``)."""
        self.context = context
        model = type(self).config_model
        self.config = model.model_validate(context.config) if model else dict(context.config)

    @classmethod
    def inputs(cls, capability: str) -> AgentInputs:
        """What the agent takes for ``capability`` (``execute_task`` passes only that).

        The default: the fields of ``input_model`` (names and aliases) and ``consumes``;
        without an input model the agent takes every parameter (``**kwargs``). An agent
        whose capabilities take different inputs overrides this.
        """
        del capability  # one input model serves every capability by default
        model = cls.input_model
        if model is None:
            return AgentInputs(None, cls.consumes)
        names = set(model.model_fields)
        names.update(f.alias for f in model.model_fields.values() if f.alias)
        return AgentInputs(frozenset(names), cls.consumes)

    async def initialize(self) -> bool:
        """Prepare resources; return True when ready. The default has nothing to prepare."""
        self.status = AgentStatus.HEALTHY
        return True

    @abc.abstractmethod
    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        """The agent's work: JSON-serializable keyword arguments in, a JSON dict out."""

    async def shutdown(self) -> None:
        """Release resources; called when the agent is replaced or the runtime stops."""
        return  # nothing to release by default; deliberately not abstract

    # -- tracking ------------------------------------------------------------------

    def record_call(self, duration: float, ok: bool) -> None:
        """Add one measured call to the statistics and settle DEGRADED/HEALTHY."""
        self.tracker.record(duration, ok, self.context.clock.now())
        self._settle()

    def _settle(self) -> None:
        """DEGRADED while an anomaly alarm is on, HEALTHY otherwise (other states stay)."""
        if self.status in _SETTLING:
            self.status = _DEGRADED if self.tracker.degraded else _HEALTHY

    def metrics(self) -> dict[str, object]:
        """Calls, errors, response times, success rate, anomalies and healing counters."""
        data = self.tracker.snapshot().as_dict()
        data["healing"] = dict(self.healing)
        data["last_error"] = self.last_error
        return data

    def headline(self, result: dict[str, Any]) -> str | None:
        """A one-line human summary of a result (``devskyy run`` prints it per step).

        The orchestrator stores it in the result under ``headline`` unless the agent
        set one itself. Override it; the default has nothing to say.
        """
        return None

    async def health_check(self) -> dict[str, Any]:
        """Status, identity and every tracked figure (see ``metrics``)."""
        return {
            "agent_name": self.agent_name,
            "name": self.name,
            "version": self.version,
            "status": self.status.value,
            "healthy": self.status in (AgentStatus.HEALTHY, AgentStatus.DEGRADED),
            "metrics": self.metrics(),
        }

    # -- self-healing --------------------------------------------------------------

    @staticmethod
    def with_healing(
        fn: Callable[Concatenate[A, P], Awaitable[R]],
    ) -> Callable[Concatenate[A, P], Awaitable[R]]:
        """Retry an async method with the agent's declared retry policy.

        Sleeps through the context clock. While retrying the status is RECOVERING; after
        a success it is HEALTHY (or DEGRADED under an alarm). When the policy gives up
        after at least one retry, or because the last allowed attempt failed, the status
        is FAILED and ``RetriesExhausted`` is raised (chained to the last error); an error
        refused on the first attempt (permanent or in ``nonRetryableErrors``) is re-raised
        as is and leaves the status alone.
        """

        @functools.wraps(fn)
        async def healing(self: A, /, *args: P.args, **kwargs: P.kwargs) -> R:
            # The policy and the executor are built once per agent, and again only when
            # what they are made of changes (``bind`` with another retry spec, clock or
            # random source, or one of those replaced on the context).
            ctx = self.context
            built = self.__dict__.get("_healing_parts")
            if (
                built is None
                or built[0] is not ctx.retry
                or built[1] is not ctx.clock
                or built[2] is not ctx.random
            ):
                policy = RetryPolicy.from_spec(ctx.retry)
                executor = AttemptExecutor(ctx.clock, ctx.random)
                built = (ctx.retry, ctx.clock, ctx.random, policy, executor)
                self.__dict__["_healing_parts"] = built
            policy, executor = built[3], built[4]

            def recovering(_attempt: int, exc: Exception, _delay: float) -> None:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.status = AgentStatus.RECOVERING
                self.healing["retries"] += 1

            plan = Plan(f"agent {self.name!r}", policy, on_retry=recovering)
            outcome = await executor.run(lambda: fn(self, *args, **kwargs), plan)
            exc = outcome.error
            if exc is not None:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if outcome.attempts == 1 and outcome.attempts < policy.max_attempts:
                    raise exc
                self.status = AgentStatus.FAILED
                self.healing["gave_up"] += 1
                raise RetriesExhausted(outcome.attempts, exc) from exc
            if outcome.attempts > 1 or self.status in (AgentStatus.FAILED, AgentStatus.RECOVERING):
                self.healing["recoveries"] += 1
            self.status = AgentStatus.HEALTHY
            self._settle()
            return cast("R", outcome.result)

        return healing
