"""Helpers shared by the scanner, fixer, security-agent and scan_and_fix tests."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from devskyy.adapters.clock import FakeClock
from devskyy.agents.codecheck.ruff import ruff_bin
from devskyy.runtime.agent import AgentContext, BaseAgent

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_project"
A = TypeVar("A", bound=BaseAgent)


def copy_sample(dest_parent: Path) -> Path:
    """A fresh copy of the sample project under ``dest_parent/sample_project``."""
    dest = dest_parent / "sample_project"
    shutil.copytree(
        SAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc")
    )
    return dest


def make_agent(cls: Callable[[], A], tmp_path: Path, name: str, **config: Any) -> A:
    """An initialized agent allowed to work under ``tmp_path``, with a fake clock (``cls``:
    an agent class that takes no arguments, as the built-in agents do)."""
    agent = cls()
    config.setdefault("allowedRoots", [str(tmp_path)])
    agent.bind(
        AgentContext(
            name=name, config=config, clock=FakeClock(), state_dir=tmp_path / "state" / ".devskyy"
        )
    )
    assert asyncio.run(agent.initialize()) is True
    return agent


def call(agent: BaseAgent, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(agent.execute_core_function(**kwargs))


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes), caches excluded."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts
    }


def digest(files: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}


def findings(report: dict[str, Any]) -> list[tuple[str, int, str, str, str, bool]]:
    """(file, line, rule, tool, severity, fixable) of each issue, in report order."""
    return [
        (i["file"], i["line"], i["rule"], i["tool"], i["severity"], i["fixable"])
        for i in report["issues"]
    ]


def run_sample_tests(project: Path) -> subprocess.CompletedProcess[str]:
    """The sample project's own test suite, in a separate interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Create ``files`` (relative path -> text) under ``root``; returns ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def own_ruff(project: Path, *args: str) -> set[tuple[str, int, str]]:
    """What the project's own ``ruff check`` (run in its root, by its own configuration)
    reports: (file, line, code) of each finding."""
    done = subprocess.run(
        [ruff_bin(), "check", "--no-cache", "--output-format", "json", "--exit-zero", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {
        (Path(d["filename"]).relative_to(project).as_posix(), d["location"]["row"], d["code"])
        for d in json.loads(done.stdout)
    }


def own_ruff_format(project: Path) -> set[str]:
    """The files the project's own ``ruff format --check`` would reformat (read from
    ``--diff``, whose file headers are stable across ruff versions)."""
    done = subprocess.run(
        [ruff_bin(), "format", "--no-cache", "--diff"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    return {line[4:].strip() for line in done.stdout.splitlines() if line.startswith("--- ")}
