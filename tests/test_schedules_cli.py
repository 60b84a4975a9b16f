"""``devskyy schedules`` and the NEXT-FIRE column of ``get workflows``: what the leader
recorded (fired with run ids, missed with the reason) and when each schedule fires next."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from test_schedules import at, leader, write_tree

from devskyy.adapters.clock import FakeClock
from devskyy.cli import main
from devskyy.core.schedules import next_fire
from devskyy.core.timefmt import rfc3339

EXTRA = """\
      startingDeadlineSeconds: 600
    - cron: "@daily"
      timezone: UTC
      suspend: true
"""


@pytest.fixture(autouse=True)
def _allow_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_agents")


@pytest.fixture
def fired(tmp_path: Path, state_url: str) -> str:
    """A store where the leader fired 10:30Z, missed 11:00Z (deadline) and fired 11:30Z."""
    tree = write_tree(tmp_path, "*/30 * * * *", EXTRA)
    clock = FakeClock(start=at("2026-06-01T10:01Z"))

    async def scenario() -> None:
        one = await leader(state_url, clock, tree)
        clock.advance(30 * 60)  # 10:31
        await one.scheduler.tick()
        await one.settle()
        clock.advance(64 * 60)  # 11:35: 11:00 is 35 min late, 11:30 is 5 min late
        await one.scheduler.tick()
        await one.settle()
        await one.system.close()

    asyncio.run(scenario())
    return state_url


def cli(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--state", url, *args])
    return result.exit_code, result.output


def test_schedules_lists_fires_with_run_ids_and_missed_ones_newest_first(fired: str) -> None:
    code, out = cli(fired, "schedules", "-o", "json")
    assert code == 0, out
    data = json.loads(out)
    rows = [(f["due_at"], f["status"], f["run_status"], f["reason"]) for f in data["fires"]]
    assert rows == [
        ("2026-06-01T11:30:00.000Z", "fired", "succeeded", ""),
        ("2026-06-01T11:00:00.000Z", "missed", None, "not started within 600s"),
        ("2026-06-01T10:30:00.000Z", "fired", "succeeded", ""),
    ]
    assert all(len(f["run_id"]) == 12 for f in data["fires"] if f["status"] == "fired")
    assert data["fires"][1]["run_id"] is None
    assert {f["timezone"] for f in data["fires"]} == {"Europe/Paris"}
    yaml_data = yaml.safe_load(cli(fired, "schedules", "-o", "yaml")[1])
    assert yaml_data == data | {"schedules": yaml_data["schedules"]}


def test_schedules_shows_each_schedule_and_its_next_fire(fired: str) -> None:
    before = time.time()
    code, out = cli(fired, "schedules", "-o", "json")
    after = time.time()
    assert code == 0
    schedules = json.loads(out)["schedules"]
    assert [(s["workflow"], s["index"], s["cron"], s["suspend"]) for s in schedules] == [
        ("nightly", 0, "*/30 * * * *", False),
        ("nightly", 1, "@daily", True),
    ]
    expected = {rfc3339(next_fire("*/30 * * * *", "Europe/Paris", t)) for t in (before, after)}
    assert schedules[0]["next_fire"] in expected
    assert schedules[1]["next_fire"] is None
    code, out = cli(fired, "schedules")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["WORKFLOW", "CRON", "TIMEZONE", "POLICY", "SUSPENDED", "NEXT-FIRE"]
    assert lines[3] == ""
    assert lines[4].split() == ["DUE", "WORKFLOW", "CRON", "STATUS", "RUN", "RUN-STATUS", "REASON"]
    assert lines[6].split()[:4] == ["2026-06-01T11:00:00.000Z", "nightly", "*/30", "*"]
    assert lines[6].endswith("not started within 600s")


def test_get_workflows_shows_the_next_fire(fired: str) -> None:
    before = time.time()
    code, out = cli(fired, "get", "workflows")
    after = time.time()
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["NAME", "PRIORITY", "STEPS", "PARAMS", "NEXT-FIRE"]
    expected = {rfc3339(next_fire("*/30 * * * *", "Europe/Paris", t)) for t in (before, after)}
    assert row.split()[-1] in expected


def test_schedules_of_an_unknown_workflow_and_of_an_empty_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    assert cli(url, "schedules") == (0, "No schedules in live state.\n\nNo fires recorded.\n")
    assert not (tmp_path / "none.db").exists()  # looking never writes
    code, out = cli(url, "schedules", "--workflow", "nope")
    assert code == 1
    assert out == 'error: workflow "nope" is not applied and has no recorded fires\n'
