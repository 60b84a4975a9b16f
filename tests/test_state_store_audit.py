"""A revision and its audit event are one transaction (issue 19.5), whoever applies:
``apply``/``rollback`` from the CLI, the watch daemon, ``serve --manifests``."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from planner_strategies import agent, rs
from state_store_contract import meta

from devskyy.adapters.db import open_engine
from devskyy.adapters.state_store import MemoryStateStore, SqlStateStore
from devskyy.adapters.watcher import MemoryWatcher
from devskyy.cli import main
from devskyy.core.plan import plan
from devskyy.errors import StateError
from devskyy.model.plan import Revision
from devskyy.runtime.daemon import WatchDaemon, WatchSettings
from devskyy.runtime.reconciler import audit_in_apply
from devskyy.runtime.system import open_system

if TYPE_CHECKING:
    from devskyy.adapters.state_store import Transaction

AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: a}
spec: {module: 'fake_agents:SucceedAgent', replicas: REPLICAS}
"""


def _events(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "select actor, event_type, details from audit_events order by seq"
        ).fetchall()
    return [(actor, kind, json.loads(details)) for actor, kind, details in rows]


def test_cli_apply_and_rollback_write_one_event_per_revision(tmp_path: Path) -> None:
    tree = tmp_path / "m"
    tree.mkdir()
    url = f"sqlite:///{tmp_path / 'state.db'}"
    runner = CliRunner()
    for replicas in (1, 2):
        (tree / "a.yaml").write_text(AGENT.replace("REPLICAS", str(replicas)))
        result = runner.invoke(main, ["--state", url, "apply", str(tree)], env=_fakes())
        assert result.exit_code == 0, result.output
    assert runner.invoke(main, ["--state", url, "rollback", "1"], env=_fakes()).exit_code == 0
    assert _events(tmp_path / "state.db") == [
        (
            "cli",
            "manifests.applied",
            {"revision": 1, "source": str(tree), "created": 1, "updated": 0, "deleted": 0},
        ),
        (
            "cli",
            "manifests.applied",
            {"revision": 2, "source": str(tree), "created": 0, "updated": 1, "deleted": 0},
        ),
        (
            "cli",
            "manifests.applied",
            {
                "revision": 3,
                "source": str(tree),
                "created": 0,
                "updated": 1,
                "deleted": 0,
                "rollback_of": 1,
            },
        ),
    ]


def _fakes() -> dict[str, str]:
    return {"DEVSKYY_ALLOWED_MODULES": "fake_agents"}


def test_the_watch_daemon_writes_each_revision_with_its_event_once(
    tmp_path: Path, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_agents")
    tree = tmp_path / "manifests"
    tree.mkdir()

    async def scenario() -> None:
        system = await open_system(state_url, start_agents=False)
        try:
            system.security_manager()  # the daemon's role-reload hook is installed too
            daemon = WatchDaemon(system, WatchSettings(path=tree), MemoryWatcher())
            for replicas in (1, 3):
                (tree / "a.yaml").write_text(AGENT.replace("REPLICAS", str(replicas)))
                outcome = await daemon.reconcile("change")
                assert outcome.revision is not None
        finally:
            await system.close()

    asyncio.run(scenario())
    events = _events(tmp_path / "state.db")
    assert [(actor, kind, d["revision"]) for actor, kind, d in events] == [
        ("watch", "manifests.applied", 1),
        ("watch", "manifests.applied", 2),
    ]


def test_a_failure_writing_the_event_undoes_the_revision(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    store = SqlStateStore(engine)
    store.apply(plan(rs(agent("a")), store.live()), meta())

    def broken(conn: Transaction, revision: Revision) -> None:
        raise StateError(f"the audit log refused revision {revision.number}")

    change = plan(rs(agent("a"), agent("b")), store.live())
    with pytest.raises(StateError, match="the audit log refused revision 2"):
        store.apply(change, meta(), within=broken)
    assert [r.number for r in store.revisions()] == [1]
    assert [m.name for m in store.live()] == ["a"]
    # With the real writer, the revision and its event land together.
    revision = store.apply(change, meta(), within=audit_in_apply("test"))
    engine.dispose()
    assert revision.number == 2
    assert [(a, d["revision"]) for a, _, d in _events(tmp_path / "state.db")] == [("test", 2)]


def test_the_memory_store_refuses_a_transactional_writer() -> None:
    store = MemoryStateStore()

    def writer(conn: Transaction, revision: Revision) -> None:
        raise AssertionError("never called")

    with pytest.raises(StateError) as err:
        store.apply(plan(rs(agent("a")), store.live()), meta(), within=writer)
    assert str(err.value) == "the in-memory store has no transaction to write along an apply"
    assert store.revisions() == []
