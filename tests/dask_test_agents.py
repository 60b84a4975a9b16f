"""Test-only agents for the Dask runner tests (``tests/test_dask_*.py``).

The workers of a test's LocalCluster import them as ``dask_test_agents:WhereAgent``:
the tests put ``tests/`` on the workers' ``PYTHONPATH`` and ``dask_test_agents`` in
``DEVSKYY_ALLOWED_MODULES``. ``WhereAgent`` answers with the pid of the process that ran
the attempt and how many times this instance was initialized; every attempt leaves a file
``<marks>/<step>.<pid>.<n>`` (so a test sees which process runs which step, across
processes), may wait for marks of ``barrier`` distinct processes, and may wait until the
file ``release`` exists (a step to kill or cut off).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from devskyy.runtime.agent import BaseAgent
from devskyy.runtime.step_context import current_step

_SEQUENCE = itertools.count(1)


class WhereConfig(BaseModel):
    """What a test scripts."""

    model_config = ConfigDict(extra="forbid")

    marks: str = ""
    release: str = ""
    hold_steps: list[str] = []
    label: str = "v1"
    # Wait until this many distinct processes have left marks: with one thread per
    # worker, a step that waits keeps its worker busy, so the others must go elsewhere.
    barrier: int = 0


class WhereAgent(BaseAgent):
    """Says where it ran; marks, holds as configured."""

    config_model = WhereConfig

    def __init__(self) -> None:
        super().__init__(agent_name="Where Agent", version="1.0.0")
        self.initialized = 0
        self.instance = uuid.uuid4().hex[:12]  # tells a rebuilt instance from the old one

    @property
    def settings(self) -> WhereConfig:
        assert isinstance(self.config, WhereConfig)
        return self.config

    async def initialize(self) -> bool:
        self.initialized += 1
        self.status = BaseAgent.AgentStatus.HEALTHY
        return True

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        settings = self.settings
        ref = current_step()
        step = ref.step if ref is not None else "-"
        if settings.marks:
            mark = Path(settings.marks) / f"{step}.{os.getpid()}.{next(_SEQUENCE)}"
            mark.write_text(settings.label, encoding="utf-8")
        if settings.barrier and settings.marks:
            for _ in range(500):  # 10 s at most: a test that waits longer has failed
                pids = {p.name.split(".")[1] for p in Path(settings.marks).iterdir()}
                if len(pids) >= settings.barrier:
                    break
                await asyncio.sleep(0.02)
        if step in settings.hold_steps and settings.release:
            while not Path(settings.release).exists():
                await asyncio.sleep(0.02)  # real time: it runs in a worker process
        return {
            "pid": os.getpid(),
            "step": step,
            "label": settings.label,
            "initialized": self.initialized,
            "instance": self.instance,
            "input": kwargs,
        }
