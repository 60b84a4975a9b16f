"""Scripted fake agents for the runtime tests (imported as ``fake_agents``).

pytest puts ``tests/`` on ``sys.path`` (rootdir conftest, no ``__init__``), so these are
importable by the registry as ``fake_agents:ClassName`` once ``DEVSKYY_ALLOWED_MODULES``
includes ``fake_agents``. Latency is simulated through the context clock, so a
``FakeClock`` makes it exact and instant.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict

from devskyy.errors import PermanentError
from devskyy.runtime.agent import BaseAgent

CALLS: list[tuple[str, int, dict[str, Any]]] = []
"""Every call made to a ``RecordingAgent``: (manifest name, instance id, kwargs)."""


class FakeConfig(BaseModel):
    """Settings every scripted agent understands."""

    model_config = ConfigDict(extra="forbid")

    failures: int = 0
    latency: float = 0.0
    label: str = ""


class Flaky(RuntimeError):
    """A temporary failure of a scripted agent."""


class Rejected(ValueError):
    """What ``RejectingAgent`` raises (listed in nonRetryableErrors by the tests)."""


class ScriptedAgent(BaseAgent):
    """Base of the fakes: counts calls and fails ``config.failures`` times first."""

    config_model = FakeConfig
    capabilities = ["fake"]

    def __init__(self) -> None:
        super().__init__(agent_name="Scripted Agent", version="2.0.0")
        self.calls = 0
        self.shut_down = False

    @property
    def settings(self) -> FakeConfig:
        assert isinstance(self.config, FakeConfig)
        return self.config

    async def initialize(self) -> bool:
        self.status = BaseAgent.AgentStatus.HEALTHY
        return True

    async def shutdown(self) -> None:
        self.shut_down = True

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.settings.latency:
            await self.clock.sleep(self.settings.latency)
        if self.calls <= self.settings.failures:
            raise Flaky(f"{self.name} failure {self.calls}")
        return {"agent": self.name, "call": self.calls, "label": self.settings.label}


class SucceedAgent(ScriptedAgent):
    """Always succeeds (after ``failures`` scripted failures, default none)."""

    capabilities = ["succeed"]


class FlakyAgent(ScriptedAgent):
    """Fails ``config.failures`` times, then succeeds."""

    capabilities = ["flaky"]


class RecordingAgent(ScriptedAgent):
    """Succeeds and records the kwargs it got, to check data passing and balancing."""

    capabilities = ["record"]

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        CALLS.append((self.name, id(self), kwargs))
        self.calls += 1
        if self.settings.latency:
            await self.clock.sleep(self.settings.latency)
        return {"agent": self.name, "instance": id(self), "kwargs_keys": sorted(kwargs)}


class HangAgent(ScriptedAgent):
    """Never answers (until cancelled)."""

    capabilities = ["hang"]

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class GateAgent(ScriptedAgent):
    """Waits for ``gate`` to open; records start order (for queue and concurrency tests)."""

    capabilities = ["gate"]
    gate: asyncio.Event | None = None
    started: list[str] = []

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        GateAgent.started.append(str(kwargs.get("tag", self.name)))
        if GateAgent.gate is not None:
            await GateAgent.gate.wait()
        return {"tag": kwargs.get("tag")}


class RejectingAgent(ScriptedAgent):
    """Raises ``Rejected`` (a ValueError) every time."""

    capabilities = ["reject"]

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        raise Rejected("bad input")


class PermanentAgent(ScriptedAgent):
    """Raises a PermanentError every time."""

    capabilities = ["permanent"]

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        raise PermanentError("cannot ever work")


class RefusingInitAgent(ScriptedAgent):
    """``initialize()`` returns False."""

    async def initialize(self) -> bool:
        self.status = BaseAgent.AgentStatus.FAILED
        return False


class CrashingInitAgent(ScriptedAgent):
    """``initialize()`` raises."""

    async def initialize(self) -> bool:
        raise OSError("disk on fire")


class NotAnAgent:
    """A class that is not a BaseAgent (the registry must refuse it)."""
