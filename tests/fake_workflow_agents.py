"""Test-only agents for the workflow CLI and the kill -9 resume test.

Importable by the registry as ``fake_workflow_agents:StepAgent`` once
``DEVSKYY_ALLOWED_MODULES`` includes ``fake_workflow_agents`` and ``tests/`` is on the
path (pytest puts it there; the subprocess tests set ``PYTHONPATH``). Every call appends
one line to ``count_file`` (so a test counts executions across processes), may wait for
``wait_for`` to exist (a step that blocks until the test lets it go), and may fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from devskyy.runtime.agent import BaseAgent


class StepConfig(BaseModel):
    """What a test scripts for one agent."""

    model_config = ConfigDict(extra="forbid")

    count_file: str = ""
    wait_for: str = ""
    poll_seconds: float = 0.02
    fail: bool = False
    # Takes this long (through the agent's clock), so that each result outlasts the run
    # store's commit window and is committed on its own (the failpoint tests).
    sleep_seconds: float = 0.0


class StepAgent(BaseAgent):
    """Echoes its input; counts, waits and fails as configured."""

    config_model = StepConfig

    def __init__(self) -> None:
        super().__init__(agent_name="Workflow Step Agent", version="1.0.0")

    @property
    def settings(self) -> StepConfig:
        assert isinstance(self.config, StepConfig)
        return self.config

    async def initialize(self) -> bool:
        self.status = BaseAgent.AgentStatus.HEALTHY
        return True

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        settings = self.settings
        if settings.count_file:
            with Path(settings.count_file).open("a", encoding="utf-8") as out:
                out.write(f"{self.name}\n")
        if settings.wait_for:
            while not Path(settings.wait_for).exists():
                await self.clock.sleep(settings.poll_seconds)
        if settings.sleep_seconds:
            await self.clock.sleep(settings.sleep_seconds)
        if settings.fail:
            raise RuntimeError(f"{self.name} failed as scripted")
        return {"agent": self.name, "echo": kwargs}
