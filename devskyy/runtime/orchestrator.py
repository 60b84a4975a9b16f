"""The Agent Orchestrator: replicas, breakers, timeouts, the priority queue, tasks.

Every attempt goes through the one attempt executor (``runtime.attempt``) and the step
runner (``runtime.step_runner``; ``LocalStepRunner`` runs it on the least-loaded replica):

* ``call_agent(name, kwargs)`` is ONE attempt: the agent's circuit breaker
  (``CircuitOpen`` when it refuses), the timeout (``StepTimeout``), and the outcome
  recorded in the agent's statistics, breaker and ``call_observers``; with ``priority``
  it first waits for a slot of the priority queue;
* ``call_with_retry(name, kwargs)`` is attempts until success or the retry policy (the
  agent's, or the one given) gives up, each through the priority queue; the workflow
  engine runs every step the same way, in one layer: ``plan(name, ...)`` with the step's
  retry, breaker, timeout and deadline, its attempts each one ``runner.run_attempt``;
* ``execute_task(task_type, parameters, required_capabilities, priority)`` compiles the
  agents that cover the capabilities (``core.tasks``) into a Workflow value and runs it
  through the workflow engine: durable, resumable, listed in ``runs``. The result keeps
  the guide's shape (``status`` completed|failed, ``results`` and ``errors`` per step,
  ``attempts``) plus ``run_id`` and a top-level ``error`` naming each failed agent and
  the reason. The task is also recorded in the execution history.

Which errors count against a breaker is the retry policy's classification
(``RetryPolicy.classify``): an error that answers the request (a ``PermanentError``
such as a declined card, an error listed in ``nonRetryableErrors``) is never retried and
counts as a success for the breaker, so that five bad requests cannot lock every caller
out; timeouts, unexpected errors, exhausted self-healing and a result that is not a JSON
dict count as failures and are retried.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from devskyy.adapters.clock import Clock
from devskyy.adapters.history_store import HistoryStore, MemoryHistoryStore
from devskyy.adapters.run_store import MemoryRunStore, RunStore
from devskyy.core.breaker import Breaker, BreakerPolicy
from devskyy.core.retry import RetryPolicy
from devskyy.core.selection import AgentInfo, providers
from devskyy.core.tasks import TASK_PREFIX, AgentInputs, TaskRequest
from devskyy.errors import CircuitOpen, NotFound, StepTimeout
from devskyy.model.manifests import CircuitBreakerSpec, Priority, RetrySpec, Workflow
from devskyy.model.runs import RunRecord
from devskyy.runtime.agent import AgentStatus, BaseAgent
from devskyy.runtime.agent_records import (
    AgentEntry,
    Replica,
    agent_metrics,
    agents_health,
    dependency_graph,
)
from devskyy.runtime.attempt import Attempted, AttemptExecutor, BreakerCell, Plan
from devskyy.runtime.queue import PriorityGate
from devskyy.runtime.step_runner import LocalStepRunner, StepRunner
from devskyy.runtime.task_runner import TaskRunner
from devskyy.runtime.workflows import WorkflowEngine

ExecutionPriority = Priority
"""The guide's name for the priority enum (CRITICAL, HIGH, MEDIUM, LOW)."""


CallObserver = Callable[[str, float, str], None]
"""Called after every attempt: agent name, seconds, outcome (ok, error, answered, cancelled)."""


class Orchestrator:
    """Coordinates registered agents. See the module docstring."""

    def __init__(
        self,
        clock: Clock,
        *,
        history: HistoryStore | None = None,
        max_concurrency: int = 16,
        random_source: Callable[[], float] = random.random,
        history_limit: int = 100,
        runs: RunStore | None = None,
        runner: StepRunner | None = None,
    ) -> None:
        self.clock = clock
        self.history: HistoryStore = history if history is not None else MemoryHistoryStore()
        self.queue = PriorityGate(max_concurrency)
        self.random = random_source
        self.history_limit = history_limit
        self._agents: dict[str, AgentEntry] = {}
        self.executor = AttemptExecutor(clock, random_source)
        self._generation = 0  # bumped whenever the registered agents change
        self.runner: StepRunner = runner or LocalStepRunner(self._replicas)
        # The engine that runs tasks; open_system shares one with named workflows.
        self.workflows = WorkflowEngine(
            self,
            runs if runs is not None else MemoryRunStore(),
            clock,
            lambda _name: None,
            defaults=self._defaults,
            random_value=random_source,
        )
        self.tasks = TaskRunner(
            self.workflows, self.history, self.agent_infos, self.agent_inputs, self.generation
        )
        self.workflows.compilers[TASK_PREFIX] = self.tasks.recompile
        self._shared: dict[str, tuple[Any, float | None]] = {}
        self._started = clock.monotonic()
        self.call_observers: list[CallObserver] = []

    # -- registration --------------------------------------------------------------

    async def register_agent(
        self,
        agent: BaseAgent,
        capabilities: list[str] | None = None,
        dependencies: list[str] | None = None,
        priority: Priority = Priority.MEDIUM,
        *,
        retry: RetrySpec | None = None,
        circuit_breaker: CircuitBreakerSpec | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Add ``agent`` under its name; a second instance of a name becomes a replica.

        An agent still INITIALIZING is initialized first; False if that fails.
        ``capabilities`` default to the class attribute ``capabilities``.
        """
        if agent.status is AgentStatus.INITIALIZING and not await agent.initialize():
            return False
        self._generation += 1
        if capabilities is None:
            capabilities = list(getattr(type(agent), "capabilities", []) or [])
        name = agent.name
        info = AgentInfo(name, tuple(capabilities), tuple(dependencies or ()), Priority(priority))
        entry = self._agents.get(name)
        retry_policy = RetryPolicy.from_spec(retry or agent.context.retry)
        if entry is None:
            policy = BreakerPolicy.from_spec(circuit_breaker or CircuitBreakerSpec())
            self._agents[name] = AgentEntry(
                info, [Replica(agent)], retry_policy, Breaker(policy), timeout
            )
            return True
        if all(r.agent is not agent for r in entry.replicas):
            entry.replicas.append(Replica(agent))
        entry.info = info
        entry.retry = retry_policy
        entry.timeout = timeout
        if circuit_breaker is not None:
            entry.breaker = Breaker(BreakerPolicy.from_spec(circuit_breaker))
        return True

    def install(
        self,
        agents: list[BaseAgent],
        *,
        capabilities: list[str],
        dependencies: list[str],
        priority: Priority,
        retry: RetrySpec,
        circuit_breaker: CircuitBreakerSpec,
        timeout: float | None,
    ) -> list[Replica]:
        """Put initialized instances of one agent in service at once (no await inside).

        Replaces any previous instances and returns their replicas (see ``drain``). The
        statistics carry over; the breaker too, unless its policy changed.
        """
        if not agents:
            raise ValueError("install needs at least one instance")
        self._generation += 1
        name = agents[0].name
        info = AgentInfo(name, tuple(capabilities), tuple(dependencies), Priority(priority))
        policy = BreakerPolicy.from_spec(circuit_breaker)
        replicas = [Replica(a) for a in agents]
        entry = self._agents.get(name)
        if entry is None:
            self._agents[name] = AgentEntry(
                info, replicas, RetryPolicy.from_spec(retry), Breaker(policy), timeout
            )
            return []
        old = entry.replicas
        entry.replicas = replicas
        entry.info = info
        entry.retry = RetryPolicy.from_spec(retry)
        entry.timeout = timeout
        if entry.breaker.policy != policy:
            entry.breaker = Breaker(policy)
        return old

    async def drain(self, replicas: list[Replica], timeout: float = 30.0) -> bool:
        """Wait until retired replicas have no call in flight; False if ``timeout`` passed."""
        waiters = [r.idle() for r in replicas if r.outstanding]
        if not waiters:
            return True
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*waiters)
        except TimeoutError:
            return False
        return True

    def resolve(self, capability: str) -> str:
        """The agent to call for a capability (best priority, then name); else NotFound."""
        found = providers(capability, {n: e.info for n, e in self._agents.items()})
        if not found:
            raise NotFound(f"no registered agent has capability {capability!r}")
        return found[0]

    def replace_replicas(self, name: str, agents: list[BaseAgent]) -> list[BaseAgent]:
        """Swap every instance of ``name`` at once (hot reload); returns the old ones."""
        entry = self._entry(name)
        old = [r.agent for r in entry.replicas]
        self._generation += 1
        entry.replicas = [Replica(a) for a in agents]
        return old

    def unregister_agent(self, name: str) -> list[BaseAgent]:
        """Forget ``name``; returns its instances so the caller can shut them down."""
        self._generation += 1
        entry = self._agents.pop(name, None)
        return [r.agent for r in entry.replicas] if entry else []

    @property
    def agent_names(self) -> list[str]:
        return sorted(self._agents)

    def agent_info(self, name: str) -> AgentInfo:
        return self._entry(name).info

    def instances(self, name: str) -> list[BaseAgent]:
        return [r.agent for r in self._entry(name).replicas]

    def retry_policy(self, name: str) -> RetryPolicy:
        """The declared retry policy of an agent (for callers that retry ``call_agent``)."""
        return self._entry(name).retry

    def _entry(self, name: str) -> AgentEntry:
        entry = self._agents.get(name)
        if entry is None:
            raise NotFound(f"agent {name!r} is not registered")
        return entry

    def generation(self) -> int:
        """A number that changes whenever the registered agents change."""
        return self._generation

    def _replicas(self, name: str) -> list[Replica]:
        return self._entry(name).replicas

    def _defaults(self, name: str) -> tuple[RetryPolicy | None, float | None]:
        entry = self._agents.get(name)
        return (None, None) if entry is None else (entry.retry, entry.timeout)

    # -- attempts (through the one attempt executor) --------------------------------------

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
        """How to attempt a call of agent ``name``: ``breakers`` (a step's own) first, then
        the agent's; a refusal by one of ``breakers`` is not the agent's (not counted as
        rejected by it)."""
        entry = self._entry(name)
        return Plan(
            f"agent {name!r}",
            retry or entry.retry,
            timeout if timeout is not None else entry.timeout,
            (*breakers, entry) if breakers else (entry,),
            self.queue if priority is not None else None,
            priority or Priority.MEDIUM,
            entry.info.priority.rank,
            observe=entry.observe or self._observer(entry),
            **hooks,
        )

    def _observer(self, entry: AgentEntry) -> Callable[[float, str, BaseException | None], None]:
        """The entry's metrics observer (made once per entry: one is needed per call)."""

        def observe(seconds: float, outcome: str, error: BaseException | None) -> None:
            if outcome == "rejected":
                if isinstance(error, CircuitOpen) and error.refused_by is entry:
                    entry.rejected += 1
                return
            if isinstance(error, StepTimeout):
                entry.timeouts += 1
            for observer in self.call_observers:
                try:
                    observer(entry.info.name, seconds, outcome)
                except Exception:  # noqa: S112 - metrics must never fail a call
                    continue
            if outcome != "cancelled":
                entry.tracker.record(seconds, outcome == "ok", self.clock.now())

        entry.observe = observe
        return observe

    def ready(self, name: str) -> asyncio.Event | None:
        """Never waiting: an agent is registered or not (``AgentCaller``)."""
        del name
        return None

    async def call_agent(
        self,
        name: str,
        kwargs: dict[str, Any],
        *,
        timeout: float | None = None,
        priority: Priority | None = None,
    ) -> dict[str, Any]:
        """ONE attempt at ``name`` with ``kwargs`` (see the module docstring)."""
        plan = self.plan(name, timeout=timeout, priority=priority)
        return await self.executor.once(lambda: self.runner.run_attempt(name, kwargs), plan)

    async def call_with_retry(
        self,
        name: str,
        kwargs: dict[str, Any],
        *,
        priority: Priority = Priority.MEDIUM,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        breakers: tuple[BreakerCell, ...] = (),
        **hooks: Any,
    ) -> Attempted[dict[str, Any]]:
        """Attempts, each through the priority queue, until success or the policy gives up.

        Sleeps between attempts go through the clock and hold no queue slot. ``hooks`` are
        the ``Plan``'s ``deadline``, ``deadline_reason``, ``deadline_error``, ``on_retry``
        and ``before_attempt``.
        """
        plan = self.plan(
            name, timeout=timeout, priority=priority, retry=retry, breakers=breakers, **hooks
        )
        return await self.executor.run(lambda: self.runner.run_attempt(name, kwargs), plan)

    # -- tasks (runtime/task_runner: compiled into workflows, run by the engine) ----------

    def agent_inputs(self, name: str, capability: str) -> AgentInputs:
        """What agent ``name`` declares it takes for ``capability`` (its class decides)."""
        return type(self._entry(name).replicas[0].agent).inputs(capability)

    def agent_infos(self) -> dict[str, AgentInfo]:
        """What task compilation needs of every registered agent."""
        return {n: e.info for n, e in self._agents.items()}

    def compile_task(self, request: TaskRequest) -> Workflow:
        """The Workflow value that runs a task over the agents registered now."""
        return self.tasks.compile(request)

    def create_task(
        self,
        task_type: str,
        parameters: dict[str, Any] | None = None,
        required_capabilities: list[str] | None = None,
        priority: Priority | str = Priority.MEDIUM,
    ) -> RunRecord:
        """Compile and record a task as a pending run (``run_task`` runs it)."""
        return self.tasks.create(
            TaskRequest(
                task_type,
                dict(parameters or {}),
                tuple(required_capabilities or ()),
                Priority(priority),
            )
        )

    async def execute_task(
        self,
        task_type: str,
        parameters: dict[str, Any] | None = None,
        required_capabilities: list[str] | None = None,
        priority: Priority | str = Priority.MEDIUM,
    ) -> dict[str, Any]:
        """Run the agents covering the capabilities as a workflow (see the module doc)."""
        record = self.create_task(task_type, parameters, required_capabilities, priority)
        return await self.run_task(record)

    async def run_task(self, run: str | RunRecord) -> dict[str, Any]:
        """Run a pending task run (``create_task``: its id, or the record it returned);
        its result, recorded in the history."""
        return self.finish_task(await self.workflows.execute(run))

    def finish_task(self, record: RunRecord) -> dict[str, Any]:
        """Count a finished task run and add it to the execution history; its result."""
        return self.tasks.finish(record)

    def task_result(self, record: RunRecord) -> dict[str, Any]:
        """The guide's result of a task run (no side effects; the API reads it too)."""
        return self.tasks.result(record)

    @property
    def execution_history(self) -> list[dict[str, Any]]:
        """The most recent task records from the store, oldest first."""
        return [r.as_dict() for r in self.history.recent(self.history_limit)]

    def agent_history(self, agent_name: str, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent task records that ran ``agent_name``, oldest first."""
        return [r.as_dict() for r in self.history.recent(limit, agent=agent_name)]

    # -- breakers ----------------------------------------------------------------------

    def is_circuit_open(self, agent_name: str) -> bool:
        """True while the agent's breaker refuses calls."""
        return self._entry(agent_name).breaker.is_open(self.clock.monotonic())

    def reset_circuit_breaker(self, agent_name: str) -> None:
        """Close the agent's breaker (an operator's manual reset)."""
        entry = self._entry(agent_name)
        entry.breaker = entry.breaker.reset()

    _is_circuit_open = is_circuit_open
    _reset_circuit_breaker = reset_circuit_breaker

    # -- shared context ------------------------------------------------------------------

    def share_data(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (forever when None)."""
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be positive, not {ttl}")
        expires = None if ttl is None else self.clock.monotonic() + ttl
        self._shared[key] = (value, expires)

    def get_shared_data(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` when absent or expired."""
        item = self._shared.get(key)
        if item is None:
            return default
        value, expires = item
        if expires is not None and self.clock.monotonic() >= expires:
            del self._shared[key]
            return default
        return value

    def purge_expired(self) -> int:
        """Drop every expired entry; returns how many."""
        now = self.clock.monotonic()
        gone = [k for k, (_, exp) in self._shared.items() if exp is not None and now >= exp]
        for key in gone:
            del self._shared[key]
        return len(gone)

    # -- reports -----------------------------------------------------------------------

    def get_agent_metrics(self, agent_name: str | None = None) -> dict[str, Any]:
        """One agent's figures, or every agent's keyed by name."""
        if agent_name is None:
            return {name: self.get_agent_metrics(name) for name in sorted(self._agents)}
        entry = self._entry(agent_name)
        return agent_metrics(agent_name, entry, self.clock.monotonic())

    def get_dependency_graph(self) -> dict[str, Any]:
        """Nodes, edges (dependency -> dependent), run order, and unregistered dependencies."""
        return dependency_graph({n: e.info for n, e in self._agents.items()})

    async def get_orchestrator_health(self) -> dict[str, Any]:
        """Overall status, per-agent status and breaker, the queue and the shared context."""
        now = self.clock.monotonic()
        return {
            **agents_health(self._agents, now),
            "queue": self.queue.describe(),
            "shared_context_keys": len(self._shared),
            "tasks": dict(self.tasks.counts),
            "uptime_seconds": now - self._started,
        }
