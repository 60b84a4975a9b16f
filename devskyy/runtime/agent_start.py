"""Which agents a run calls, which of them its first steps need, and waiting for the rest.

``devskyy run`` starts only the agents its workflow calls, and of those only the first
wave before the run: building an agent imports its module and runs ``initialize()``
(tens of milliseconds for the code agents), and the first step should start soon after
the process does (issue 13, point 5). ``Registry.start_later`` starts the others one
after another while the first steps run.

- ``called_by(workflow, agents)``: the agents the steps name or whose capability they
  ask for, with their dependencies; ``task_agents(params, agents)`` the same for a
  recorded task run, whose workflow is compiled over the agents registered.
- ``waves(workflow, agents)``: those split in two. The first wave is the agents of the
  steps without ``needs`` (they start with the run), every provider of a capability a
  step asks for (the engine resolves a capability among the agents running when the
  step starts, so they must all be running by then), and their dependencies. The second
  wave is the rest, in the order of the first step that calls each, then the
  dependencies no step calls.
- ``BackgroundStarts``: those starts, one task each batch, with an event per agent set when
  its start has ended (started or failed).
- ``WaitingCaller``: the workflow engine's ``AgentCaller`` once agents start in the
  background: the orchestrator's, whose ``ready(name)`` gives the event of an agent still
  starting. A step whose agent is not registered yet waits for it (the engine's side),
  then looks it up as any call does: an agent that did not start fails its step with the
  orchestrator's own error (``agent 'x' is not registered``), as it did when every
  agent started before the run. The wait is not part of the attempt's timeout (an
  agent's start never was).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from devskyy.core.selection import AgentInfo, select_for
from devskyy.core.tasks import TaskRequest
from devskyy.errors import DevskyyError
from devskyy.model.manifests import Agent, Workflow

if TYPE_CHECKING:
    from devskyy.runtime.orchestrator import Orchestrator
    from devskyy.runtime.step_runner import StepRunner


def _with_dependencies(names: set[str], agents: Mapping[str, Agent]) -> set[str]:
    wanted = set(names)
    todo = list(wanted)
    while todo:
        found = agents.get(todo.pop())
        for dependency in found.spec.dependencies if found else ():
            if dependency not in wanted:
                wanted.add(dependency)
                todo.append(dependency)
    return wanted


def _providers(capability: str, agents: Mapping[str, Agent]) -> set[str]:
    return {n for n, a in agents.items() if capability in a.spec.capabilities}


def called_by(workflow: Workflow, agents: Mapping[str, Agent]) -> set[str]:
    """The agents ``workflow``'s steps call (by name or capability), with their
    dependencies: the only ones a run of it needs."""
    wanted: set[str] = set()
    for step in workflow.spec.steps:
        if step.agent:
            wanted.add(step.agent)
        elif step.capability:
            wanted |= _providers(step.capability, agents)
    return _with_dependencies(wanted, agents)


def task_agents(params: Mapping[str, Any], agents: Mapping[str, Agent]) -> set[str]:
    """The agents a recorded task run (``task:<type>``, its ``params``) calls: those its
    required capabilities select among ``agents``, with their dependencies, which is what
    compiling it picks once they are registered (``core.tasks``). Empty when the params
    are not a task's or no agent provides a capability: compiling the task says why."""
    infos = {
        name: AgentInfo(
            name, tuple(a.spec.capabilities), tuple(a.spec.dependencies), a.spec.priority
        )
        for name, a in agents.items()
    }
    try:
        request = TaskRequest.from_params(params)
        return set(select_for(request.required_capabilities, infos))
    except (DevskyyError, KeyError, TypeError, ValueError):
        return set()


def waves(workflow: Workflow, agents: Mapping[str, Agent]) -> tuple[set[str], list[str]]:
    """The agents to start before a run of ``workflow``, and those that may start during it
    (in the order the steps first call them); see the module docstring."""
    first: set[str] = set()
    for step in workflow.spec.steps:
        if step.capability:
            first |= _providers(step.capability, agents)
        elif step.agent and not step.needs:
            first.add(step.agent)
    first = _with_dependencies(first, agents)
    later: list[str] = []
    for step in workflow.spec.steps:
        if step.agent and step.agent not in first and step.agent not in later:
            later.append(step.agent)
    # Dependencies no step calls last: nothing waits for them.
    later += sorted(_with_dependencies(set(later), agents) - first - set(later))
    return first, later


Starting = Callable[[str], asyncio.Event | None]
"""The event set when an agent's start has ended (None: it is not starting)."""
StartOne = Callable[[str], Awaitable[dict[str, str]]]
"""Start one agent; the errors (name -> reason) of the agents that failed to."""
StartErrors = Callable[[dict[str, str]], None]
"""Told of agents that failed to start in the background: name -> reason."""


class BackgroundStarts:
    """Agents being started in the background, each with the event its start ends with."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, names: Sequence[str], start_one: StartOne, on_errors: StartErrors) -> None:
        """``start_one`` each of ``names`` (in order) in a task; report failures."""
        names = [n for n in names if n not in self._events]
        if not names:
            return
        for name in names:
            self._events[name] = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._each(names, start_one, on_errors)))

    def starting(self, name: str) -> asyncio.Event | None:
        """The event set when ``name``'s start has ended; None if it is not starting."""
        return self._events.get(name)

    async def _each(self, names: list[str], start_one: StartOne, on_errors: StartErrors) -> None:
        try:
            # The steps launched with this task go first: their agents are running.
            await asyncio.sleep(0)
            for name in names:
                try:
                    errors = await start_one(name)
                    if errors:
                        on_errors(errors)
                finally:
                    self._events.pop(name).set()
        finally:  # cancelled, or on_errors failed: nobody waits for the rest forever
            for name in names:
                event = self._events.pop(name, None)
                if event is not None:
                    event.set()

    async def ended(self) -> None:
        """Wait until every start has ended; raise the first error of one, if any.

        Cancelled while it waits, it cancels the starts (a start cut short shuts down
        what it built) and waits for them to wind down.
        """
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        try:
            outcomes = await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


class WaitingCaller:
    """The orchestrator as the engine's ``AgentCaller``, with the agents still starting.

    Everything is the orchestrator's (plan, runner, resolution) except ``ready``: a step
    whose agent is not registered yet waits for the event of its start (the engine's
    side of ``AgentCaller.ready``), then looks the agent up as any call does.
    """

    def __init__(self, orchestrator: Orchestrator, starting: Starting) -> None:
        self.orchestrator = orchestrator
        self.ready = starting
        # The orchestrator's own methods, bound once: no signature to keep in step with
        # ``AgentCaller``'s, and no layer more on the per-step path (``generation``).
        self.plan = orchestrator.plan
        self.generation = orchestrator.generation
        self.resolve = orchestrator.resolve

    @property
    def runner(self) -> StepRunner:
        return self.orchestrator.runner
