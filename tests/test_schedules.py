"""Scheduled workflows fired by the leader, exactly once, by the fake clock: across both
Europe/Paris DST changes, a daemon restart, a crash between record and run, a standby
taking over, and the daemon's own loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.daemon_lock import DaemonLease, LeaseLost
from devskyy.adapters.schedule_store import Fire, SqlScheduleStore
from devskyy.adapters.watcher import MemoryWatcher
from devskyy.runtime.daemon import WatchDaemon, WatchSettings
from devskyy.runtime.scheduler import Scheduler
from devskyy.runtime.system import System, open_system

T = TypeVar("T")

AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: a
spec:
  module: fake_agents:SucceedAgent
---
"""

WORKFLOW = """\
apiVersion: devskyy.dev/v1
kind: Workflow
metadata:
  name: nightly
spec:
  params:
    label: {{type: string, default: none}}
  steps:
    - name: one
      agent: a
      input: {{label: "${{{{ params.label }}}}"}}
  schedules:
    - cron: "{cron}"
      timezone: Europe/Paris
      params: {{label: scheduled}}
{extra}"""


@pytest.fixture(autouse=True)
def _allow_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_agents")


def at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def utc(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%MZ")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def write_tree(root: Path, cron: str, extra: str = "") -> Path:
    tree = root / "manifests"
    tree.mkdir(exist_ok=True)
    (tree / "all.yaml").write_text(AGENT + WORKFLOW.format(cron=cron, extra=extra))
    return tree


class Leader:
    """One daemon's view: a system on the shared store, its lease, its scheduler."""

    def __init__(self, system: System, lease: DaemonLease | None, tree: Path) -> None:
        self.system = system
        self.lease = lease
        fence = lease.fence if lease is not None else None
        self.scheduler = Scheduler(
            system.live,
            system.workflows,
            SqlScheduleStore(system.engine),
            system.background,
            fence=fence,
        )
        self.daemon = WatchDaemon(
            system, WatchSettings(path=tree), MemoryWatcher(), lease=lease, scheduler=self.scheduler
        )

    async def until(self, clock: FakeClock, end: float, step: float = 60.0) -> None:
        """Tick every ``step`` fake seconds up to ``end``, letting started runs finish."""
        while clock.now() < end:
            clock.advance(min(step, end - clock.now()))
            await self.scheduler.tick()
            await self.settle()

    async def settle(self) -> None:
        tasks = list(self.scheduler.started.values())
        if tasks:
            await asyncio.gather(*tasks)


async def leader(url: str, clock: FakeClock, tree: Path, *, lease: bool = True) -> Leader:
    system = await open_system(url, clock=clock, start_agents=False)
    held = None
    if lease:
        held = DaemonLease(system.engine, clock)
        held.try_acquire()
    one = Leader(system, held, tree)
    await one.daemon.reconcile("start")
    await one.scheduler.tick()  # arms new schedules
    return one


def fires(url_engine: Any) -> list[Fire]:
    return sorted(SqlScheduleStore(url_engine).list_fires(limit=1000), key=lambda f: f.due_at)


def test_every_half_hour_across_spring_forward_with_a_restart_fires_each_due_time_once(
    tmp_path: Path, state_url: str
) -> None:
    tree = write_tree(tmp_path, "*/30 * * * *")
    clock = FakeClock(start=at("2026-03-28T23:10Z"))

    async def scenario() -> tuple[list[Fire], list[tuple[str, str, dict[str, Any]]]]:
        first = await leader(state_url, clock, tree)
        await first.until(clock, at("2026-03-29T00:40Z"))
        # The daemon stops and a new one starts 30 minutes later (01:10Z): 01:00Z, the
        # DST instant, came due while nothing ran and must fire once after the restart.
        await first.system.close()
        clock.advance(30 * 60)
        second = await leader(state_url, clock, tree)
        await second.settle()
        await second.until(clock, at("2026-03-29T03:05Z"))
        done = fires(second.system.engine)
        runs = [
            (r.id, r.status.value, r.params)
            for r in second.system.workflows.store.list_runs(limit=100)
        ]
        await second.system.close()
        return done, runs

    done, runs = run(scenario())
    fired = [(utc(f.due_at), f.status) for f in done if f.status != "armed"]
    assert fired == [
        ("2026-03-28T23:30Z", "fired"),
        ("2026-03-29T00:00Z", "fired"),
        ("2026-03-29T00:30Z", "fired"),
        # 02:00, 02:30 (skipped by DST) and 03:00 CEST: one instant, fired once, by the
        # restarted daemon.
        ("2026-03-29T01:00Z", "fired"),
        ("2026-03-29T01:30Z", "fired"),
        ("2026-03-29T02:00Z", "fired"),
        ("2026-03-29T02:30Z", "fired"),
        ("2026-03-29T03:00Z", "fired"),
    ]
    by_id = {run_id: (status, params) for run_id, status, params in runs}
    assert sorted(by_id) == sorted(f.run_id for f in done if f.run_id)
    assert all(value == ("succeeded", {"label": "scheduled"}) for value in by_id.values())


def test_a_daily_run_across_autumn_back_fires_once_at_the_first_0230(
    tmp_path: Path, state_url: str
) -> None:
    tree = write_tree(tmp_path, "30 2 * * *")
    clock = FakeClock(start=at("2026-10-24T22:00Z"))

    async def scenario() -> list[Fire]:
        one = await leader(state_url, clock, tree)
        await one.until(clock, at("2026-10-25T03:00Z"), step=300)
        done = fires(one.system.engine)
        await one.system.close()
        return done

    done = run(scenario())
    assert [(utc(f.due_at), f.status) for f in done if f.status != "armed"] == [
        ("2026-10-25T00:30Z", "fired")  # 02:30 CEST; 02:30 CET (01:30Z) is not a second run
    ]


def test_a_fire_recorded_by_a_daemon_killed_before_its_run_existed_is_run_by_the_next(
    tmp_path: Path, state_url: str
) -> None:
    tree = write_tree(tmp_path, "0 * * * *")
    clock = FakeClock(start=at("2026-06-01T09:30Z"))

    async def scenario() -> tuple[list[Fire], list[str]]:
        one = await leader(state_url, clock, tree)
        # The record commits, then the process dies before the run is created.
        clock.advance(30 * 60)
        store = SqlScheduleStore(one.system.engine)
        key = fires(one.system.engine)[0].schedule
        store.record(
            [
                Fire(
                    "nightly",
                    key,
                    at("2026-06-01T10:00Z"),
                    "fired",
                    "deadbeef0001",
                    "",
                    "0 * * * *",
                    "Europe/Paris",
                    clock.now(),
                )
            ]
        )
        await one.system.close()
        two = await leader(state_url, clock, tree)
        await two.settle()
        done = fires(two.system.engine)
        ids = [r.id for r in two.system.workflows.store.list_runs(limit=10)]
        await two.system.close()
        return done, ids

    done, ids = run(scenario())
    assert [(utc(f.due_at), f.status, f.run_id) for f in done if f.status != "armed"] == [
        ("2026-06-01T10:00Z", "fired", "deadbeef0001")
    ]
    assert ids == ["deadbeef0001"]


def test_a_standby_that_took_over_fires_each_due_time_once_and_the_old_leader_cannot(
    tmp_path: Path, state_url: str
) -> None:
    tree = write_tree(tmp_path, "*/10 * * * *")
    clock = FakeClock(start=at("2026-06-01T10:01Z"))

    async def scenario() -> list[Fire]:
        old = await leader(state_url, clock, tree)
        await old.until(clock, at("2026-06-01T10:11Z"))
        # The old leader hangs (no heartbeat) past the TTL; the standby takes over.
        clock.advance(60)
        standby = await open_system(state_url, clock=clock, start_agents=False)
        lease = DaemonLease(standby.engine, clock)
        assert lease.try_acquire() is not None  # a takeover
        new = Leader(standby, lease, tree)
        await new.scheduler.tick()
        await new.settle()
        # The old one wakes up at 10:21 and tries to fire: the fence refuses it.
        clock.advance(9 * 60)
        with pytest.raises(LeaseLost):
            await old.scheduler.tick()
        await new.scheduler.tick()
        await new.settle()
        await new.until(clock, at("2026-06-01T10:30Z"))
        done = fires(standby.engine)
        await old.system.close()
        await standby.close()
        return done

    done = run(scenario())
    assert [(utc(f.due_at), f.status) for f in done if f.status != "armed"] == [
        ("2026-06-01T10:10Z", "fired"),
        ("2026-06-01T10:20Z", "fired"),
        ("2026-06-01T10:30Z", "fired"),
    ]


def test_forbid_skips_a_due_time_while_the_previous_run_is_still_going(
    tmp_path: Path, state_url: str
) -> None:
    tree = write_tree(tmp_path, "*/5 * * * *", "      concurrencyPolicy: Forbid\n")
    clock = FakeClock(start=at("2026-06-01T10:01Z"))

    async def scenario() -> list[Fire]:
        one = await leader(state_url, clock, tree)
        clock.advance(4 * 60)
        # Hold the run as pending (created, not started) so it is still going at 10:10.
        fired = await asyncio.to_thread(
            one.scheduler._one,  # the record step alone, without starting the run
            one.system.live.current().workflows["nightly"],
            one.system.live.current().workflows["nightly"].spec.schedules[0],
            fires(one.system.engine)[0].schedule,
        )
        assert [f.status for f in fired] == ["fired"]
        clock.advance(5 * 60)
        await one.scheduler.tick()
        done = fires(one.system.engine)
        await one.system.close()
        return done

    done = run(scenario())
    rows = [(utc(f.due_at), f.status, f.reason) for f in done if f.status != "armed"]
    assert rows[0][:2] == ("2026-06-01T10:05Z", "fired")
    run_id = done[1].run_id
    assert rows[1] == ("2026-06-01T10:10Z", "skipped", f"Forbid: run {run_id} still running")


def test_the_daemon_loop_wakes_for_due_times_on_the_fake_clock(
    tmp_path: Path, state_url: str
) -> None:
    tree = write_tree(tmp_path, "*/20 * * * *")
    clock = FakeClock(start=at("2026-06-01T10:05Z"))

    async def scenario() -> tuple[list[Fire], list[float]]:
        system = await open_system(state_url, clock=clock, start_agents=False)
        one = Leader(system, None, tree)
        daemon = one.daemon
        daemon.settings = WatchSettings(path=tree, interval=10_000.0)
        task = asyncio.create_task(daemon.run())
        while clock.now() < at("2026-06-01T11:05Z"):
            await asyncio.sleep(0.001)
        daemon.request_stop()
        await task
        await one.settle()
        done = fires(system.engine)
        await system.close()
        return done, clock.sleeps

    done, sleeps = run(scenario())
    assert [(utc(f.due_at), f.status) for f in done if f.status != "armed"][:3] == [
        ("2026-06-01T10:20Z", "fired"),
        ("2026-06-01T10:40Z", "fired"),
        ("2026-06-01T11:00Z", "fired"),
    ]
    # It slept until each due time, not in small steps.
    assert sleeps[:3] == [15 * 60, 20 * 60, 20 * 60]


def test_replace_cancels_the_running_run_and_starts_the_new_one(
    tmp_path: Path, state_url: str
) -> None:
    tree = write_tree(tmp_path, "*/5 * * * *", "      concurrencyPolicy: Replace\n")
    text = (tree / "all.yaml").read_text().replace("SucceedAgent", "HangAgent")
    (tree / "all.yaml").write_text(text)
    clock = FakeClock(start=at("2026-06-01T10:01Z"))

    async def scenario() -> tuple[list[Fire], str]:
        one = await leader(state_url, clock, tree)
        clock.advance(4 * 60 + 30)  # 10:05:30
        await one.scheduler.tick()
        ((first_id, first),) = one.scheduler.started.items()
        for _ in range(50):  # let the run reach its (hanging) step
            await asyncio.sleep(0)
        clock.advance(5 * 60)  # 10:10:30: the first run still hangs
        await one.scheduler.tick()
        await asyncio.wait([first])
        status = one.system.workflows.store.get(first_id).status.value
        for task in list(one.scheduler.started.values()):
            task.cancel()
        await asyncio.gather(*one.scheduler.started.values(), return_exceptions=True)
        done = fires(one.system.engine)
        await one.system.close()
        return done, status

    done, first_status = run(scenario())
    rows = [(utc(f.due_at), f.status, f.reason) for f in done if f.status != "armed"]
    first_run = done[1].run_id
    assert rows == [
        ("2026-06-01T10:05Z", "fired", ""),
        ("2026-06-01T10:10Z", "replaced", f"Replace: cancelled run {first_run}"),
    ]
    assert first_status == "cancelled"
    assert done[2].run_id not in (None, first_run)


def test_a_restart_inside_the_repeated_autumn_hour_does_not_fire_its_wall_times_again(
    tmp_path: Path, state_url: str
) -> None:
    tree = write_tree(tmp_path, "*/30 * * * *")
    clock = FakeClock(start=at("2026-10-24T23:40Z"))  # 01:40 CEST

    async def scenario() -> list[Fire]:
        first = await leader(state_url, clock, tree)
        await first.until(clock, at("2026-10-25T00:50Z"))  # 02:50 CEST
        await first.system.close()
        clock.advance(20 * 60)  # 01:10Z: 02:10 CET, the second 02:00-03:00
        second = await leader(state_url, clock, tree)
        await second.until(clock, at("2026-10-25T02:40Z"))
        done = fires(second.system.engine)
        await second.system.close()
        return done

    done = run(scenario())
    assert [(utc(f.due_at), f.status) for f in done if f.status != "armed"] == [
        ("2026-10-25T00:00Z", "fired"),  # 02:00 CEST
        ("2026-10-25T00:30Z", "fired"),  # 02:30 CEST
        # 02:00 and 02:30 CET (01:00Z, 01:30Z) are the same wall times: not again.
        ("2026-10-25T02:00Z", "fired"),  # 03:00 CET
        ("2026-10-25T02:30Z", "fired"),
    ]


def test_a_schedule_that_cannot_be_computed_is_logged_and_the_others_still_fire(
    tmp_path: Path, state_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Validation refuses a bad cron; a store written by hand or by an older devskyy may hold
    # one. The live view is the project's own seam: hand the scheduler such a state.
    tree = write_tree(tmp_path, "*/10 * * * *")
    clock = FakeClock(start=at("2026-06-01T10:01Z"))

    async def scenario() -> list[Fire]:
        one = await leader(state_url, clock, tree)
        good = one.system.live.current().workflows["nightly"]
        spec = good.spec.model_copy(
            update={"schedules": [good.spec.schedules[0].model_copy(update={"cron": "61 * * * *"})]}
        )
        bad = good.model_copy(
            update={"metadata": good.metadata.model_copy(update={"name": "bad"}), "spec": spec}
        )

        class Live:
            def current(self) -> Any:
                return type("State", (), {"workflows": {"bad": bad, "nightly": good}})()

        one.scheduler.live = Live()  # type: ignore[assignment]
        clock.advance(10 * 60)
        assert one.scheduler.next_due() == at("2026-06-01T10:20Z")
        await one.scheduler.tick()  # arms "bad" (nothing to compute yet), fires 10:10
        await one.settle()
        clock.advance(10 * 60)
        await one.scheduler.tick()  # "bad" cannot say what is due; 10:20 fires anyway
        await one.settle()
        done = fires(one.system.engine)
        await one.system.close()
        return done

    with caplog.at_level("ERROR", logger="devskyy.schedules"):
        done = run(scenario())
    assert [(f.workflow, utc(f.due_at), f.status) for f in done if f.status != "armed"] == [
        ("nightly", "2026-06-01T10:10Z", "fired"),
        ("nightly", "2026-06-01T10:20Z", "fired"),
    ]
    assert [r.message for r in caplog.records].count("schedule cannot be computed; skipped") == 2
