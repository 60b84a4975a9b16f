"""The live-state view: parsed once per revision, refreshed by a revision check only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devskyy.adapters.db import open_engine
from devskyy.adapters.state_store import MemoryStateStore, SqlStateStore
from devskyy.core.plan import plan
from devskyy.model.manifests import Agent, Workflow
from devskyy.model.plan import ApplyMeta
from devskyy.model.resources import ResourceSet
from devskyy.runtime.live import LiveState, LiveView
from devskyy.runtime.system import open_system


def agent(name: str, **spec: Any) -> Agent:
    return Agent.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Agent",
            "metadata": {"name": name},
            "spec": {"module": "fake_agents:SucceedAgent", **spec},
        }
    )


def flow(name: str) -> Workflow:
    return Workflow.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Workflow",
            "metadata": {"name": name},
            "spec": {"steps": [{"name": "a", "agent": "one"}]},
        }
    )


class CountingStore(MemoryStateStore):
    """The in-memory twin, counting full reads (each one parses every manifest)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def live(self) -> ResourceSet:
        self.reads += 1
        return super().live()


META = ApplyMeta(created_at=datetime(2026, 1, 1, tzinfo=UTC), source="test")


def apply(store: MemoryStateStore | SqlStateStore, *manifests: Any) -> int:
    the_plan = plan(ResourceSet(tuple(manifests)), store.live(), prune=True)
    return store.apply(the_plan, META).number


def test_a_revision_is_read_once_and_then_only_checked() -> None:
    store = CountingStore()
    view = LiveView(store)
    empty = view.current()
    assert (empty.revision, dict(empty.agents)) == (None, {})
    apply(store, agent("one"), flow("wf"))
    store.reads = 0
    first = view.current()
    assert first.revision == 1
    assert sorted(first.agents) == ["one"]
    assert sorted(first.workflows) == ["wf"]
    for _ in range(100):
        assert view.current() is first
    assert store.reads == 1  # one parse for the revision; then a revision check per call
    apply(store, agent("one"), agent("two", rateLimit={"requests": 3, "windowSeconds": 60}))
    store.reads = 0
    second = view.current()
    assert (second.revision, sorted(second.agents), dict(second.workflows)) == (
        2,
        ["one", "two"],
        {},
    )
    assert second.rate_limited_agents == frozenset({"two"})
    assert store.reads == 1
    assert (first.revision, sorted(first.agents)) == (1, ["one"])  # old snapshots stay


def test_snapshots_are_frozen() -> None:
    state = LiveState(3, ResourceSet((agent("one"),)))
    with pytest.raises(TypeError):
        state.agents["x"] = agent("x")  # type: ignore[index]
    with pytest.raises(AttributeError):
        state.revision = 4  # type: ignore[misc]


def test_swap_installs_the_applied_revision_without_a_read() -> None:
    store = CountingStore()
    view = LiveView(store)
    number = apply(store, agent("one"))
    store.reads = 0
    view.swap(number, store.live())
    store.reads = 0
    assert sorted(view.current().agents) == ["one"]
    assert store.reads == 0
    view.swap(0, ResourceSet())  # an older revision never replaces a newer snapshot
    assert view.current().revision == number


def test_another_process_applying_is_seen_by_the_revision_check(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"

    async def scenario() -> tuple[int | None, int | None, list[str]]:
        async with await open_system(url, start_agents=False) as system:
            before = system.live.current().revision
            other = open_engine(url)  # another process's connection to the same store
            try:
                apply(SqlStateStore(other), agent("one"))
            finally:
                other.dispose()
            after = system.live.current()
            return before, after.revision, sorted(after.agents)

    assert asyncio.run(scenario()) == (None, 1, ["one"])


def test_requests_parse_no_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from api_fixtures import ApiWorld  # noqa: PLC0415 (the API's extra deps load only here)

    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    (tmp_path / "go").touch()
    world = ApiWorld(tmp_path, code=False, wait_for=str(tmp_path / "go"))
    try:
        headers = {"X-API-Key": world.key("admin")}
        reads: list[int] = []
        state = world.system.state
        real_live = state.live

        def counting_live() -> ResourceSet:
            reads.append(1)
            return real_live()

        monkeypatch.setattr(state, "live", counting_live)  # the store adapter: our own seam
        world.system.live.current()  # the snapshot of the current revision exists
        reads.clear()
        for path in (
            "/api/agents/registry/list",
            "/api/agents/orchestrator/health",
            "/api/agents/orchestrator/dependencies",
            "/api/agents/registry/info/echo",
        ):
            assert world.client.get(path, headers=headers).status_code == 200, path
        done = world.client.post(
            "/api/agents/registry/workflow?wait=true",
            json={"workflow_name": "echo_flow"},
            headers=headers,
        )
        assert done.json()["status"] == "succeeded"
        task = world.client.post(
            "/api/agents/orchestrator/execute?wait=true",
            json={"task_type": "t", "required_capabilities": ["echo"]},
            headers=headers,
        )
        assert task.json()["status"] == "succeeded"
        assert reads == []  # no request read or parsed the applied manifests
    finally:
        world.close()
