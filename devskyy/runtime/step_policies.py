"""What a run session decides per step from the manifests: agent, retry, timeout, breaker.

Each agent's manifest and declared defaults are looked up once per run session (through
``RunServices``); a step's ``retry`` wins over its agent's (else ``RetryPolicy()``), its
``timeoutSeconds`` over its agent's (else 300 s), never past the workflow's deadline; a
step with ``circuitBreaker`` gets its own breaker cell, kept by the engine across runs
(keyed by workflow and step).
"""

from __future__ import annotations

from devskyy.core.breaker import Breaker, BreakerPolicy
from devskyy.core.retry import RetryPolicy
from devskyy.model.manifests import Agent, StepSpec
from devskyy.runtime.attempt import StepBreaker
from devskyy.runtime.run_services import RunServices

DEFAULT_RETRY = RetryPolicy()
DEFAULT_TIMEOUT = 300.0


class StepPolicies:
    """The per-step policies of one run session of workflow ``workflow``."""

    def __init__(self, engine: RunServices, workflow: str) -> None:
        self.engine = engine
        self.workflow = workflow
        self.manifests: dict[str, Agent | None] = {}
        self.defaults: dict[str, tuple[RetryPolicy | None, float | None]] = {}

    def agent(self, name: str) -> Agent | None:
        """The Agent manifest of ``name`` (looked up once per run session)."""
        if name not in self.manifests:
            self.manifests[name] = self.engine.agent_manifest(name)
        return self.manifests[name]

    def _defaults(self, name: str) -> tuple[RetryPolicy | None, float | None]:
        if name not in self.defaults:
            self.defaults[name] = self.engine.agent_defaults(name, self.agent(name))
        return self.defaults[name]

    def retry(self, spec: StepSpec, agent: str) -> RetryPolicy:
        """The step's retry policy, else its agent's, else the default."""
        if spec.retry is not None:
            return RetryPolicy.from_spec(spec.retry)
        return self._defaults(agent)[0] or DEFAULT_RETRY

    def timeout(self, spec: StepSpec, agent: str, left: float) -> float:
        """The attempt's timeout: the step's, else its agent's, never beyond ``left``."""
        timeout = spec.timeout_seconds
        if timeout is None:
            timeout = self._defaults(agent)[1] or DEFAULT_TIMEOUT
        return max(0.0, min(timeout, left))

    def breakers(self, spec: StepSpec) -> tuple[StepBreaker, ...]:
        """The step's own breaker cell (made on first use), if it declares one."""
        if spec.circuit_breaker is None:
            return ()
        key = (self.workflow, spec.name)
        cell = self.engine.breakers.get(key)
        if cell is None:
            policy = BreakerPolicy.from_spec(spec.circuit_breaker)
            cell = StepBreaker(Breaker(policy), f"step {spec.name!r}")
            self.engine.breakers[key] = cell
        return (cell,)
