"""``spec.schedules`` through ``devskyy validate``: bad cron, zone and params are
``file:line:col`` problems like any other; a good schedule validates, and ``plan`` shows a
schedule change as a field change."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from devskyy.cli import main

AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: a
spec:
  module: fake_agents:SucceedAgent
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
  schedules:
{schedules}"""


@pytest.fixture(autouse=True)
def _allow_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_agents")


def tree(root: Path, schedules: str) -> Path:
    folder = root / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "a.yaml").write_text(AGENT)
    (folder / "w.yaml").write_text(WORKFLOW.format(schedules=schedules))
    return folder


def test_bad_cron_zone_and_params_are_located_problems(tmp_path: Path) -> None:
    folder = tree(
        tmp_path,
        '    - cron: "61 * * * *"\n'
        "      timezone: Mars/Olympus\n"
        "      params: {nope: 1, label: 3}\n"
        '    - cron: "@reboot"\n'
        '    - cron: "0 9 * * * 2027"\n',
    )
    result = CliRunner().invoke(main, ["validate", str(folder)])
    w = f"{folder}/w.yaml"
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{w}:12:7: spec.schedules[0].cron: invalid cron expression '61 * * * *': "
        "[61 * * * *] is not acceptable, out of range",
        f"{w}:13:7: spec.schedules[0].timezone: unknown time zone 'Mars/Olympus' "
        "(expected an IANA name such as 'Europe/Paris' or 'UTC')",
        f"{w}:14:16: spec.schedules[0].params.nope: unknown param 'nope' (declared: label)",
        f"{w}:14:25: spec.schedules[0].params.label: 3 is not of type 'string'",
        f"{w}:15:7: spec.schedules[1].cron: unknown cron name '@reboot' (expected one of "
        "@annually, @daily, @hourly, @midnight, @monthly, @weekly, @yearly)",
        f"{w}:16:7: spec.schedules[2].cron: cron expression '0 9 * * * 2027' has 6 fields; "
        "expected 5 (minute hour day-of-month month day-of-week)",
        f"{folder}: 6 problems",
    ]


def test_an_unknown_policy_is_a_schema_problem(tmp_path: Path) -> None:
    folder = tree(tmp_path, '    - cron: "@daily"\n      concurrencyPolicy: Sometimes\n')
    result = CliRunner().invoke(main, ["validate", str(folder)])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"{folder}/w.yaml:13:7: spec.schedules[0].concurrencyPolicy: "
        "'Sometimes' is not one of Allow, Forbid, Replace"
    )


def test_a_good_schedule_validates_and_plan_shows_its_change(tmp_path: Path) -> None:
    schedule = (
        '    - cron: "*/15 * * * *"\n'
        "      timezone: Europe/Paris\n"
        "      concurrencyPolicy: Forbid\n"
        "      startingDeadlineSeconds: 120\n"
    )
    folder = tree(tmp_path, schedule)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    runner = CliRunner()
    assert runner.invoke(main, ["validate", str(folder)]).exit_code == 0
    assert runner.invoke(main, ["--state", state, "apply", str(folder)]).exit_code == 0
    changed = schedule.replace("*/15", "*/5") + "      suspend: true\n"
    (folder / "w.yaml").write_text(WORKFLOW.format(schedules=changed))
    result = runner.invoke(main, ["--state", state, "plan", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == [
        "~ update Workflow/nightly",
        '    spec.schedules[0].cron: "*/15 * * * *" -> "*/5 * * * *"',
        "    spec.schedules[0].suspend: false -> true",
    ]
