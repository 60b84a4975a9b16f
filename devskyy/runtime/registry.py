"""The Agent Registry: agent instances built from live state, hot reload, workflows.

``discover_and_register_all_agents()`` reads the applied Agent manifests (live state,
never files) and makes the running agents match them: for each manifest it imports the
class named by ``spec.module`` (only from ``devskyy.agents``, the prefixes in
``DEVSKYY_ALLOWED_MODULES``, or modules of the ``devskyy.agents`` entry-point group),
creates ``spec.replicas`` instances, binds an ``AgentContext`` (manifest name, config,
store engine, clock, retry policy), and puts them in service only when every
``initialize()`` returned True. Agents whose manifest did not change keep running;
agents no longer applied are retired. A failure (import, a class that is not a
``BaseAgent``, a bad config, ``initialize()`` returning False or raising) is reported in
the summary and does not stop the others; an agent already running keeps serving.

``reload(name)`` re-imports the agent's module (``importlib.reload``) and swaps in new
instances under the same rule: the old ones keep serving unless every new one passed
``initialize()``; retired instances finish their calls in flight, then ``shutdown()``.

``start_later(names, on_errors)`` starts agents one after another in the background (the
second wave of ``devskyy run``, ``runtime.agent_start``): the workflow engine's calls then
go through a ``WaitingCaller``, so a step whose agent is still starting waits for it;
``on_errors`` hears of each agent that failed before its steps do. ``shutdown()`` waits
for those starts to end first.

``execute_workflow(name, parameters)`` runs an applied Workflow through
``devskyy.runtime.workflows.WorkflowEngine`` and returns the guide's shape (``status``
"completed" or "failed", each step's output under its name, ``errors``, ``run_id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from devskyy.adapters.clock import Clock
from devskyy.errors import DevskyyError, NotFound
from devskyy.extras import import_failure
from devskyy.model.manifests import Agent, Workflow
from devskyy.model.resources import ResourceSet
from devskyy.runtime.agent import AgentContext, AgentStatus, BaseAgent
from devskyy.runtime.agent_start import BackgroundStarts, StartErrors, WaitingCaller
from devskyy.runtime.orchestrator import Orchestrator
from devskyy.runtime.workflows import WorkflowEngine, to_guide_shape

if TYPE_CHECKING:
    from devskyy.adapters.engine import Engine

LiveSource = Callable[[], ResourceSet]
HEALTH_TIMEOUT = 10.0


class AgentLoadError(DevskyyError):
    """An agent could not be imported, constructed or initialized."""


@dataclass(frozen=True)
class Loaded:
    """Initialized instances of one agent, ready to be put in service."""

    manifest: Agent
    instances: list[BaseAgent]


_BUILT_IN_AGENTS = "devskyy.agents"


def module_allowed(module_path: str, prefixes: Sequence[str]) -> bool:
    """Whether ``package.module:Class`` lies under one of the prefixes."""
    name = module_path.split(":", 1)[0]
    return any(name == p or name.startswith(p + ".") for p in prefixes)


class Registry:
    """Builds, serves, reloads and reports the agents of live state."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        live: LiveSource | ResourceSet,
        *,
        clock: Clock,
        engine: Engine | None = None,
        state_dir: Path | None = None,
        allowed_prefixes: Sequence[str] | None = None,
        workflows: WorkflowEngine | None = None,
    ) -> None:
        self.orchestrator = orchestrator
        self._live: LiveSource = live if callable(live) else (lambda: live)
        self.clock = clock
        self.engine = engine
        self.state_dir = state_dir or Path(".devskyy")
        self._prefixes = allowed_prefixes
        # Read once: each entry_points() walks every installed distribution (~10 ms), and
        # an agent build asks for the prefixes each time.
        self._entry_point_modules: list[str] | None = None
        self.workflows = workflows
        self._manifests: dict[str, Agent] = {}
        self.failures: dict[str, str] = {}
        self.background = BackgroundStarts()

    # -- building ------------------------------------------------------------------

    def prefixes(self) -> tuple[str, ...]:
        """``devskyy.agents`` plus the configured or environment prefixes."""
        # Imported here: manifest validation (YAML, JSON Schema checks) is not on the path
        # of `devskyy run`, whose built-in agents never need the prefixes (load_class).
        from devskyy.core.validation import normalize_prefixes  # noqa: PLC0415
        from devskyy.runtime.manifests import (  # noqa: PLC0415
            allowed_prefixes_from_env,
            entry_point_modules,
        )

        if self._prefixes is not None:
            return normalize_prefixes(list(self._prefixes))
        if self._entry_point_modules is None:
            self._entry_point_modules = entry_point_modules()
        return normalize_prefixes([*allowed_prefixes_from_env(), *self._entry_point_modules])

    def _allowed(self, module_path: str) -> bool:
        """Whether ``module_path`` lies under an allowed prefix, the cheap ones first: the
        built-in agents, then the configured or environment prefixes; the installed
        distributions' entry points (``prefixes``) are read only for a module that is
        under neither (in a large environment that read is tens of milliseconds)."""
        # The built-in agents are always allowed (core.validation.DEFAULT_MODULE_PREFIX).
        if module_allowed(module_path, (_BUILT_IN_AGENTS,)):
            return True
        if self._prefixes is None and self._entry_point_modules is None:
            from devskyy.runtime.manifests import allowed_prefixes_from_env  # noqa: PLC0415

            if module_allowed(module_path, allowed_prefixes_from_env()):
                return True
        return module_allowed(module_path, self.prefixes())

    def load_class(self, module_path: str, *, reload: bool = False) -> type[BaseAgent]:
        """Import ``package.module:Class`` from an allowed prefix; it must be a BaseAgent."""
        if not self._allowed(module_path):
            raise AgentLoadError(
                f"module {module_path!r} is outside the allowed prefixes "
                f"({', '.join(self.prefixes())}); add its package to DEVSKYY_ALLOWED_MODULES"
            )
        module_name, class_name = module_path.split(":", 1)
        try:
            importlib.invalidate_caches()
            module = sys.modules.get(module_name) if reload else None
            if module is not None:
                _forget_bytecode(module)
                module = importlib.reload(module)
            else:
                module = importlib.import_module(module_name)
        except Exception as exc:
            raise AgentLoadError(
                f"cannot import {module_name!r}: {import_failure(module_name, exc)}"
            ) from exc
        cls = getattr(module, class_name, None)
        if cls is None:
            raise AgentLoadError(f"module {module_name!r} has no attribute {class_name!r}")
        if not (isinstance(cls, type) and issubclass(cls, BaseAgent)):
            raise AgentLoadError(f"{module_path!r} is not a BaseAgent subclass")
        return cls

    async def build(self, manifest: Agent, *, reload: bool = False) -> Loaded:
        """Import, construct, bind and initialize ``spec.replicas`` instances."""
        spec = manifest.spec
        # The guide's agent classes take no constructor arguments.
        cls = cast("Callable[[], BaseAgent]", self.load_class(spec.module, reload=reload))
        instances: list[BaseAgent] = []
        try:
            for _ in range(spec.replicas):
                agent = cls()
                agent.bind(
                    AgentContext(
                        name=manifest.name,
                        config=dict(spec.config),
                        engine=self.engine,
                        clock=self.clock,
                        retry=spec.retry,
                        state_dir=self.state_dir,
                        random=self.orchestrator.random,
                    )
                )
                instances.append(agent)
                try:
                    ready = await agent.initialize()
                except Exception as exc:
                    raise AgentLoadError(
                        f"initialize() raised {type(exc).__name__}: {exc}"
                    ) from exc
                if ready is not True:
                    raise AgentLoadError("initialize() returned False")
        except (AgentLoadError, asyncio.CancelledError):  # cancelled: a start cut short
            await _shutdown_all(instances)
            raise
        except Exception as exc:
            await _shutdown_all(instances)
            raise AgentLoadError(f"{type(exc).__name__}: {exc}") from exc
        return Loaded(manifest, instances)

    async def _serve(self, loaded: Loaded) -> None:
        """Put new instances in service, then retire the old ones gracefully."""
        spec = loaded.manifest.spec
        old = self.orchestrator.install(
            loaded.instances,
            capabilities=list(spec.capabilities),
            dependencies=list(spec.dependencies),
            priority=spec.priority,
            retry=spec.retry,
            circuit_breaker=spec.circuit_breaker,
            timeout=spec.timeout_seconds,
        )
        self._manifests[loaded.manifest.name] = loaded.manifest
        self.failures.pop(loaded.manifest.name, None)
        if old:
            await self.orchestrator.drain(old)
            await _shutdown_all([r.agent for r in old])

    async def _retire(self, name: str) -> None:
        self._manifests.pop(name, None)
        await _shutdown_all(self.orchestrator.unregister_agent(name))

    # -- the guide's entry points ------------------------------------------------------

    async def discover_and_register_all_agents(
        self, only: Collection[str] | None = None
    ) -> dict[str, Any]:
        """Make the running agents match live state; returns what happened per agent.

        ``only``: start (or update) just these agents and leave the others as they are,
        as ``devskyy run`` does for the agents its workflow calls: starting every
        applied agent would delay the first step by their imports and initialization.
        """
        manifests = {a.name: a for a in self._live().agents}
        if only is not None:
            manifests = {n: m for n, m in manifests.items() if n in only}
        outcome: dict[str, str] = {}
        errors: dict[str, str] = {}
        for name in sorted(set(self._manifests) - set(manifests) if only is None else ()):
            await self._retire(name)
            outcome[name] = "removed"
        for name, manifest in sorted(manifests.items()):
            running = self._manifests.get(name)
            if running is not None and running.spec == manifest.spec:
                # Labels and annotations only: the running instances (and their breakers
                # and metrics) stay; nothing an agent sees has changed.
                self._manifests[name] = manifest
                outcome[name] = "unchanged"
                continue
            try:
                loaded = await self.build(manifest)
            except AgentLoadError as exc:
                errors[name] = str(exc)
                self.failures[name] = str(exc)
                serving = name in self._manifests
                outcome[name] = "failed (previous version serving)" if serving else "failed"
                continue
            outcome[name] = "updated" if name in self._manifests else "registered"
            await self._serve(loaded)
        for name in [n for n in self.failures if n not in manifests and only is None]:
            del self.failures[name]
        registered = sorted(self._manifests)
        return {
            "total_agents": len(manifests),
            "registered": len(registered),
            "failed": len(errors),
            "agents": outcome,
            "errors": errors,
        }

    def start_later(self, names: Sequence[str], on_errors: StartErrors) -> None:
        """Start these agents in the background, one after another in this order.

        Until an agent's start has ended, a workflow step that calls it waits (the
        engine's caller becomes a ``WaitingCaller``); ``on_errors`` is told of a failure
        before that step goes on (and fails: the agent is not registered).
        """
        if not names:
            return
        engine = self.workflow_engine()
        if not isinstance(engine.caller, WaitingCaller):
            engine.caller = WaitingCaller(self.orchestrator, self.background.starting)
        self.background.start(names, self._start_one, on_errors)

    async def _start_one(self, name: str) -> dict[str, str]:
        summary = await self.discover_and_register_all_agents((name,))
        errors: dict[str, str] = summary["errors"]
        return errors

    def get_agent(self, name: str) -> BaseAgent | None:
        """An instance of the agent (its first replica), or None if it is not running."""
        if name not in self._manifests:
            return None
        return self.orchestrator.instances(name)[0]

    def list_agents(self, capability: str | None = None) -> list[dict[str, Any]]:
        """Running agents (with ``capability``, if given), by name."""
        rows = []
        for name, manifest in sorted(self._manifests.items()):
            spec = manifest.spec
            if capability is not None and capability not in spec.capabilities:
                continue
            instances = self.orchestrator.instances(name)
            rows.append(
                {
                    "name": name,
                    "module": spec.module,
                    "version": spec.version,
                    "description": spec.description,
                    "capabilities": list(spec.capabilities),
                    "dependencies": list(spec.dependencies),
                    "priority": spec.priority.value,
                    "replicas": len(instances),
                    "status": _best_status(instances).value,
                }
            )
        return rows

    def agent_info(self, name: str) -> dict[str, Any]:
        """One running agent's listing plus its orchestrator metrics; NotFound otherwise."""
        for row in self.list_agents():
            if row["name"] == name:
                return {**row, "metrics": self.orchestrator.get_agent_metrics(name)}
        raise NotFound(f"agent {name!r} is not registered")

    async def health_check_all(self) -> dict[str, Any]:
        """Every agent's health: ``healthy_agents`` of ``total_agents`` (failed ones count)."""
        agents: dict[str, Any] = {}
        for name in sorted(self._manifests):
            replicas = [await _health(a) for a in self.orchestrator.instances(name)]
            healthy = any(r["healthy"] for r in replicas)
            agents[name] = {
                "status": _best_of(r["status"] for r in replicas),
                "healthy": healthy,
                "circuit_open": self.orchestrator.is_circuit_open(name),
                "replicas": replicas,
            }
        for name, error in sorted(self.failures.items()):
            if name not in agents:
                agents[name] = {"status": "failed", "healthy": False, "error": error}
        return {
            "healthy_agents": sum(1 for a in agents.values() if a["healthy"]),
            "total_agents": len(agents),
            "agents": agents,
        }

    async def reload(self, name: str) -> dict[str, Any]:
        """Re-import the agent's code; swap only if every new instance initializes."""
        manifest = self._live().get("Agent", name)
        if not isinstance(manifest, Agent):
            manifest = self._manifests.get(name)
        if manifest is None:
            raise NotFound(f"agent {name!r} is not applied")
        serving = name in self._manifests
        try:
            loaded = await self.build(manifest, reload=True)
        except AgentLoadError as exc:
            self.failures[name] = str(exc)
            return {
                "agent": name,
                "status": "failed",
                "error": str(exc),
                "serving": "previous version" if serving else "nothing",
            }
        await self._serve(loaded)
        return {
            "agent": name,
            "status": "reloaded",
            "module": manifest.spec.module,
            "version": loaded.instances[0].version,
            "replicas": len(loaded.instances),
        }

    async def execute_workflow(
        self, workflow_name: str, parameters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Run an applied workflow; the guide's result shape (see the module docstring)."""
        record = await self.workflow_engine().run(workflow_name, parameters or {})
        return to_guide_shape(record)

    def workflow_engine(self) -> WorkflowEngine:
        """The workflow engine in use: the orchestrator's, looking up live state."""
        if self.workflows is None:
            self.workflows = self.orchestrator.workflows
            self.workflows.use_workflows(self.applied_workflow)
            self.workflows.use_agents(self.applied_agent)
        return self.workflows

    def applied_workflow(self, name: str) -> Workflow | None:
        """The applied Workflow manifest of that name, if any."""
        found = self._live().get("Workflow", name)
        return found if isinstance(found, Workflow) else None

    def applied_agent(self, name: str) -> Agent | None:
        """The applied Agent manifest of that name (or the one running), if any."""
        found = self._live().get("Agent", name)
        return found if isinstance(found, Agent) else self._manifests.get(name)

    async def shutdown(self) -> None:
        """Wait for the background starts to end, then retire every agent (``shutdown()``
        on each instance); the error of a background start, if any, is raised after."""
        try:
            await self.background.ended()
        finally:
            for name in sorted(self._manifests):
                await self._retire(name)


async def _shutdown_all(agents: list[BaseAgent]) -> None:
    for agent in agents:
        try:
            await agent.shutdown()
        except Exception as exc:  # one agent's shutdown must not stop the rest
            agent.last_error = f"shutdown: {type(exc).__name__}: {exc}"


async def _health(agent: BaseAgent) -> dict[str, Any]:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            report = dict(await agent.health_check())
    except Exception as exc:  # a broken check is a finding
        return {"status": "failed", "healthy": False, "error": f"{type(exc).__name__}: {exc}"}
    status = str(report.get("status", agent.status.value))
    report.setdefault("healthy", status in ("healthy", "degraded"))
    report["status"] = status
    return report


_ORDER = ["healthy", "degraded", "recovering", "initializing", "failed"]


def _best_of(statuses: Any) -> str:
    ranked = [s if s in _ORDER else "failed" for s in statuses]
    return min(ranked, key=_ORDER.index) if ranked else "failed"


def _best_status(instances: list[BaseAgent]) -> AgentStatus:
    return AgentStatus(_best_of(a.status.value for a in instances))


def _forget_bytecode(module: Any) -> None:
    """Delete the module's cached bytecode before a reload.

    Python trusts a ``.pyc`` whose recorded source mtime (whole seconds) and size match:
    an edit saved within the same second that keeps the file's size (``1.0.0`` ->
    ``2.0.0``) would otherwise reload the old code.
    """
    source = getattr(module, "__file__", None)
    if isinstance(source, str) and source.endswith(".py"):
        with contextlib.suppress(OSError, NotImplementedError, ValueError):
            os.remove(importlib.util.cache_from_source(source))
