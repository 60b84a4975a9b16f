"""Hot reload must see an edit even when the file keeps its size and mtime second."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from devskyy.adapters.clock import FakeClock
from devskyy.model.resources import ResourceSet
from devskyy.runtime.orchestrator import Orchestrator
from devskyy.runtime.registry import Registry

CODE = """\
from devskyy.runtime.agent import BaseAgent

class Versioned(BaseAgent):
    def __init__(self) -> None:
        super().__init__(agent_name="Versioned", version="{version}")

    async def execute_core_function(self, **kwargs: object) -> dict[str, object]:
        return {{}}
"""


def test_reload_ignores_stale_bytecode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "reloadpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    source = package / "versioned.py"
    source.write_text(CODE.format(version="1.0.0"))
    stamp = (1_700_000_000, 1_700_000_000)
    os.utime(source, stamp)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "reloadpkg")
    monkeypatch.delitem(sys.modules, "reloadpkg.versioned", raising=False)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as on most machines
    registry = Registry(Orchestrator(FakeClock()), ResourceSet(), clock=FakeClock())
    first = registry.load_class("reloadpkg.versioned:Versioned")
    assert first().version == "1.0.0"
    assert list((package / "__pycache__").glob("versioned.*.pyc"))
    # Same size, same mtime: Python's .pyc check alone would keep the old code.
    source.write_text(CODE.format(version="2.0.0"))
    os.utime(source, stamp)
    second = registry.load_class("reloadpkg.versioned:Versioned", reload=True)
    assert second().version == "2.0.0"
    monkeypatch.delitem(sys.modules, "reloadpkg.versioned", raising=False)
