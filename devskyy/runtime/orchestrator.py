"""The Agent Orchestrator: replicas, breakers, timeouts, the priority queue, tasks.

``call_agent(name, kwargs)`` is ONE attempt, the seam the workflow engine and
``execute_task`` share: it asks the agent's circuit breaker (``CircuitOpen`` when it
refuses), picks the replica with the fewest outstanding calls, enforces the timeout
(``StepTimeout``), and records the outcome in the agent's statistics and breaker.
Retrying is the caller's business, with the agent's ``retry_policy(name)``.

``execute_task(task_type, parameters, required_capabilities, priority)`` selects the
agents that cover the capabilities (plus their dependencies), runs each as soon as its
dependencies have succeeded, passes ``upstream={dependency: result}`` with the
parameters, retries per the agent's policy, and records the task in the history store.
Every attempt waits for a slot of the priority queue (``max_concurrency``; critical
before high before medium before low).

Breaker failures are the errors that say something about the agent: timeouts, temporary
errors, unexpected exceptions, exhausted self-healing, a result that is not a dict. An
error that answers the request (a ``PermanentError`` such as a declined card, or an
error listed in the agent's ``nonRetryableErrors``) shows the agent is up: it counts as
an error in the statistics but as a success for the breaker (pybreaker's ``exclude``),
so that five bad requests cannot lock every caller out.

Timeouts are enforced by the event loop (``asyncio.timeout``): a hung call must be
interrupted even when the injected clock is a fake one. Durations, breaker times and
TTLs come from the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Callable
from typing import Any

from devskyy.adapters.clock import Clock
from devskyy.adapters.history_store import ExecutionRecord, HistoryStore, MemoryHistoryStore
from devskyy.core.breaker import Breaker, BreakerPolicy
from devskyy.core.retry import DoSleep, GiveUp, RetryPolicy
from devskyy.core.selection import (
    AgentInfo,
    dependency_order,
    least_loaded,
    providers,
    select_for,
)
from devskyy.errors import (
    CircuitOpen,
    NotFound,
    PermanentError,
    StepTimeout,
)
from devskyy.model.manifests import CircuitBreakerSpec, Priority, RetrySpec
from devskyy.runtime.agent import AgentStatus, BaseAgent
from devskyy.runtime.agent_records import (
    AgentEntry,
    Attempted,
    Replica,
    agent_metrics,
    agents_health,
    answers_the_request,
    dependency_graph,
)
from devskyy.runtime.queue import PriorityGate

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
    ) -> None:
        self.clock = clock
        self.history: HistoryStore = history if history is not None else MemoryHistoryStore()
        self.queue = PriorityGate(max_concurrency)
        self.random = random_source
        self.history_limit = history_limit
        self._agents: dict[str, AgentEntry] = {}
        self._shared: dict[str, tuple[Any, float | None]] = {}
        self._started = clock.monotonic()
        self._tasks = {"completed": 0, "failed": 0}
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
        entry.replicas = [Replica(a) for a in agents]
        return old

    def unregister_agent(self, name: str) -> list[BaseAgent]:
        """Forget ``name``; returns its instances so the caller can shut them down."""
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

    # -- one attempt -----------------------------------------------------------------

    async def call_agent(
        self,
        name: str,
        kwargs: dict[str, Any],
        *,
        timeout: float | None = None,
        priority: Priority | None = None,
    ) -> dict[str, Any]:
        """One attempt at ``name`` with ``kwargs``: breaker, least-loaded replica, timeout.

        With ``priority`` the attempt first waits for a slot of the priority queue (the
        workflow engine passes its workflow's priority); without, the caller manages
        admission itself (``call_with_retry`` holds the slot across the attempt).
        """
        if priority is not None:
            async with self.queue.slot(priority, self._entry(name).info.priority.rank):
                return await self.call_agent(name, kwargs, timeout=timeout)
        entry = self._entry(name)
        admission = entry.breaker.admit(self.clock.monotonic())
        entry.breaker = admission.breaker
        if not admission.allowed:
            entry.rejected += 1
            raise CircuitOpen(
                f"circuit breaker for agent {name!r} is open; "
                f"retry after {admission.retry_after:.1f}s"
            )
        index = least_loaded([(r.outstanding, r.served) for r in entry.replicas])
        replica = entry.replicas[index]
        limit = timeout if timeout is not None else entry.timeout
        replica.outstanding += 1
        replica.served += 1
        started = self.clock.monotonic()
        outcome = "error"
        deadline = asyncio.timeout(limit)
        try:
            async with deadline:
                result = await replica.agent.execute_core_function(**kwargs)
        except TimeoutError:
            if not deadline.expired():
                raise  # the agent's own timeout, not ours
            entry.timeouts += 1
            raise StepTimeout(f"agent {name!r} did not answer within {limit:g}s") from None
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception as exc:
            if answers_the_request(exc, entry.retry):
                outcome = "answered"
            raise
        else:
            if not isinstance(result, dict):
                raise PermanentError(f"agent {name!r} returned {type(result).__name__}, not a dict")
            outcome = "ok"
            if "headline" not in result:
                line = None
                with contextlib.suppress(Exception):  # a summary must never fail a call
                    line = replica.agent.headline(result)
                if line:
                    result = {**result, "headline": line}
            return result
        finally:
            replica.finished_one()
            self._settle(entry, outcome, started)

    def _settle(self, entry: AgentEntry, outcome: str, started: float) -> None:
        """Record one finished attempt in the statistics, the breaker and the observers."""
        now = self.clock.monotonic()
        for observe in self.call_observers:
            with contextlib.suppress(Exception):  # metrics must never fail a call
                observe(entry.info.name, now - started, outcome)
        if outcome == "cancelled":
            entry.breaker = entry.breaker.release()
            return
        entry.tracker.record(now - started, outcome == "ok", self.clock.now())
        if outcome == "error":
            entry.breaker = entry.breaker.on_failure(now)
        else:
            entry.breaker = entry.breaker.on_success(now)

    async def call_with_retry(
        self,
        name: str,
        kwargs: dict[str, Any],
        *,
        priority: Priority = Priority.MEDIUM,
        timeout: float | None = None,
    ) -> Attempted:
        """Attempts, each through the priority queue, until success or the policy gives up.

        Sleeps between attempts go through the clock and hold no queue slot.
        """
        entry = self._entry(name)
        attempt = 1
        while True:
            try:
                async with self.queue.slot(priority, entry.info.priority.rank):
                    result = await self.call_agent(name, kwargs, timeout=timeout)
                return Attempted(result, None, attempt, "")
            except Exception as exc:
                decision = entry.retry.decide(attempt, exc, self.random())
                if isinstance(decision, GiveUp):
                    return Attempted(None, exc, attempt, decision.reason)
                if isinstance(decision, DoSleep):
                    await self.clock.sleep(decision.seconds)
                attempt += 1

    # -- tasks -------------------------------------------------------------------------

    async def execute_task(
        self,
        task_type: str,
        parameters: dict[str, Any] | None = None,
        required_capabilities: list[str] | None = None,
        priority: Priority | str = Priority.MEDIUM,
    ) -> dict[str, Any]:
        """Run the agents covering the capabilities in dependency order (see module doc)."""
        level = Priority(priority)
        params = dict(parameters or {})
        infos = {n: e.info for n, e in self._agents.items()}
        order = dependency_order(select_for(required_capabilities or [], infos), infos)
        task_id = uuid.uuid4().hex
        started_at, started = self.clock.now(), self.clock.monotonic()
        results: dict[str, Any] = {}
        errors: dict[str, str] = {}
        attempts: dict[str, int] = {}
        done: dict[str, asyncio.Event] = {n: asyncio.Event() for n in order}

        async def run_one(name: str) -> None:
            try:
                deps = [d for d in infos[name].dependencies if d in done]
                for dep in deps:
                    await done[dep].wait()
                failed = [d for d in deps if d not in results]
                if failed:
                    errors[name] = f"skipped: dependency {failed[0]!r} did not succeed"
                    return
                kwargs = dict(params)
                if deps:
                    kwargs["upstream"] = {d: results[d] for d in deps}
                outcome = await self.call_with_retry(name, kwargs, priority=level)
                attempts[name] = outcome.attempts
                if outcome.error is None:
                    results[name] = outcome.result
                else:
                    errors[name] = outcome.describe_error()
            finally:
                done[name].set()

        await asyncio.gather(*(run_one(n) for n in order))
        status = "failed" if errors else "completed"
        self._tasks[status] += 1
        record = ExecutionRecord(
            task_id=task_id,
            task_type=task_type,
            status=status,
            priority=level.value,
            started_at=started_at,
            duration=self.clock.monotonic() - started,
            agents=tuple(order),
            attempts=attempts,
            results=results,
            errors=errors,
        )
        self.history.append(record)
        return {**record.as_dict(), "execution_time": record.duration}

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
            "tasks": dict(self._tasks),
            "uptime_seconds": now - self._started,
        }
