"""Shared fixtures: a fresh state URL per test, the repo root, the fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import postgres_server

from devskyy.adapters.clock import FakeClock

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
