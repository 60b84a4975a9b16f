"""Shared fixtures: a fresh state URL per test, the repo root, the fake clock, an engine
on the state URL, and the codecheck scanner and fixer agents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pg_server import postgres_server

from devskyy.adapters.clock import FakeClock

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from devskyy.agents.fixer import FixerAgent
    from devskyy.agents.scanner import ScannerAgent

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No test may read or write the developer's own ./.devskyy or environment settings.
    monkeypatch.delenv("DEVSKYY_STATE_URL", raising=False)
    monkeypatch.delenv("DEVSKYY_ALLOWED_MODULES", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """One real PostgreSQL for the whole session (see ``tests/pg_server.py``)."""
    with postgres_server() as url:
        yield url


@pytest.fixture
def engine(state_url: str) -> Iterator[Engine]:
    """An engine on this test's SQLite state (a test file may define its own)."""
    from devskyy.adapters.db import open_engine  # noqa: PLC0415 - only tests that use it

    engine = open_engine(state_url)
    yield engine
    engine.dispose()


@pytest.fixture
def scanner(tmp_path: Path) -> ScannerAgent:
    from codecheck_helpers import make_agent  # noqa: PLC0415 - only the codecheck tests

    from devskyy.agents.scanner import ScannerAgent  # noqa: PLC0415

    return make_agent(ScannerAgent, tmp_path, "scanner")


@pytest.fixture
def fixer(tmp_path: Path) -> FixerAgent:
    from codecheck_helpers import make_agent  # noqa: PLC0415 - only the codecheck tests

    from devskyy.agents.fixer import FixerAgent  # noqa: PLC0415

    return make_agent(FixerAgent, tmp_path, "fixer")
