"""``devskyy plan | apply | history | rollback`` through click's CliRunner (exact output and
exit codes), and once through the installed console script in a real subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from devskyy.adapters.db import open_engine
from devskyy.adapters.state_store import SqlStateStore
from devskyy.cli import main
from devskyy.runtime.security import SecurityManager

AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: {name}
spec:
  module: devskyy.agents.{name}:Agent
  priority: {priority}
"""


def write_agent(root: Path, name: str, priority: str = "medium") -> None:
    (root / "agents").mkdir(parents=True, exist_ok=True)
    text = AGENT.format(name=name, priority=priority)
    (root / "agents" / f"{name}.yaml").write_text(text, encoding="utf-8")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "manifests"
    write_agent(root, "scanner", "high")
    write_agent(root, "seo")
    return root


@pytest.fixture
def cli(state_url: str) -> CliRunnerFn:
    return CliRunnerFn(state_url)


class CliRunnerFn:
    """``cli("plan", path)`` runs devskyy against the test's state URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(main, ["--state", self.url, *args], catch_exceptions=False)


def test_plan_on_an_empty_store_lists_creates(cli: CliRunnerFn, tree: Path) -> None:
    result = cli("plan", str(tree))
    assert result.exit_code == 0
    assert result.stdout == (
        "+ create Agent/scanner\n"
        "+ create Agent/seo\n"
        "\n"
        "Plan: 2 to create, 0 to update, 0 to delete, 0 unchanged.\n"
    )


def test_plan_does_not_create_a_state_file(tmp_path: Path, tree: Path) -> None:
    db = tmp_path / "fresh" / "state.db"
    db.parent.mkdir()
    result = CliRunner().invoke(main, ["--state", f"sqlite:///{db}", "plan", str(tree)])
    assert result.exit_code == 0
    assert list(db.parent.iterdir()) == []


def test_apply_then_apply_again(cli: CliRunnerFn, tree: Path) -> None:
    first = cli("apply", str(tree))
    assert first.exit_code == 0
    assert first.stdout == (
        "+ create Agent/scanner\n"
        "+ create Agent/seo\n"
        "\n"
        "Plan: 2 to create, 0 to update, 0 to delete, 0 unchanged.\n"
        "\n"
        "Applied revision 1 (2 created, 0 updated, 0 deleted).\n"
    )
    again = cli("apply", str(tree))
    assert again.exit_code == 0
    assert again.stdout == f"No changes. Live state matches {tree} (revision 1).\n"


def test_update_shows_field_lines(cli: CliRunnerFn, tree: Path) -> None:
    cli("apply", str(tree))
    write_agent(tree, "seo", "high")
    write_agent(tree, "fixer")
    result = cli("apply", str(tree))
    assert result.exit_code == 0
    assert result.stdout == (
        "+ create Agent/fixer\n"
        "~ update Agent/seo\n"
        '    spec.priority: "medium" -> "high"\n'
        "\n"
        "Plan: 1 to create, 1 to update, 0 to delete, 1 unchanged.\n"
        "\n"
        "Applied revision 2 (1 created, 1 updated, 0 deleted).\n"
    )


def test_detailed_exitcode(cli: CliRunnerFn, tree: Path, tmp_path: Path) -> None:
    pending = cli("plan", str(tree), "--detailed-exitcode")
    assert pending.exit_code == 2
    assert pending.stdout.endswith("Plan: 2 to create, 0 to update, 0 to delete, 0 unchanged.\n")
    assert cli("plan", str(tree)).exit_code == 0  # without the flag, changes still exit 0
    cli("apply", str(tree))
    clean = cli("plan", str(tree), "--detailed-exitcode")
    assert clean.exit_code == 0
    assert clean.stdout == f"No changes. Live state matches {tree} (revision 1).\n"
    missing = cli("plan", str(tmp_path / "nowhere"), "--detailed-exitcode")
    assert missing.exit_code == 1
    assert missing.stdout == ""
    assert missing.stderr == (
        f"{tmp_path / 'nowhere'}:1:1: <file>: no such file or directory\n"
        f"{tmp_path / 'nowhere'}: 1 problem\n"
    )


def test_invalid_tree_exits_1_and_applies_nothing(cli: CliRunnerFn, tree: Path) -> None:
    cli("apply", str(tree))
    (tree / "agents" / "seo.yaml").write_text(
        AGENT.format(name="seo", priority="urgent"), encoding="utf-8"
    )
    result = cli("apply", str(tree))
    assert result.exit_code == 1
    assert result.stdout == ""
    expected = "spec.priority: 'urgent' is not one of critical, high, medium, low"
    assert re.fullmatch(
        rf"{re.escape(str(tree))}/agents/seo.yaml:7:\d+: {expected}\n"
        rf"{re.escape(str(tree))}: 1 problem\n",
        result.stderr,
    )
    assert cli("plan", str(tree), "--detailed-exitcode").exit_code == 1
    history = cli("history", "-o", "json")
    assert [r["revision"] for r in json.loads(history.stdout)] == [1]


def test_prune_and_orphans(cli: CliRunnerFn, tree: Path) -> None:
    cli("apply", str(tree))
    (tree / "agents" / "seo.yaml").unlink()
    kept = cli("apply", str(tree))
    assert kept.stdout == (
        "? orphan Agent/seo (not in the manifests; apply --prune deletes it)\n"
        f"No changes. Live state matches {tree} (revision 1).\n"
    )
    planned = cli("plan", str(tree), "--prune", "--detailed-exitcode")
    assert planned.exit_code == 2
    assert planned.stdout == (
        "- delete Agent/seo\n\nPlan: 0 to create, 0 to update, 1 to delete, 1 unchanged.\n"
    )
    pruned = cli("apply", str(tree), "--prune")
    assert pruned.stdout.endswith("Applied revision 2 (0 created, 0 updated, 1 deleted).\n")
    assert json.loads(cli("get", "agents", "-o", "json").stdout)[0]["metadata"]["name"] == (
        "scanner"
    )


def test_dry_run_prints_the_plan_and_writes_nothing(
    cli: CliRunnerFn, tree: Path, tmp_path: Path
) -> None:
    dry = cli("apply", str(tree), "--dry-run")
    assert dry.exit_code == 0
    assert dry.stdout == (cli("plan", str(tree)).stdout + "\nDry run: nothing was applied.\n")
    assert not (tmp_path / "state.db").exists()
    cli("apply", str(tree))
    write_agent(tree, "seo", "low")
    before = (tmp_path / "state.db").read_bytes()
    dry = cli("apply", str(tree), "--dry-run")
    assert dry.stdout.startswith('~ update Agent/seo\n    spec.priority: "medium" -> "low"\n')
    assert (tmp_path / "state.db").read_bytes() == before
    assert cli("plan", str(tree), "--detailed-exitcode").exit_code == 2


def test_plan_json(cli: CliRunnerFn, tree: Path) -> None:
    cli("apply", str(tree))
    write_agent(tree, "seo", "low")
    data = json.loads(cli("plan", str(tree), "-o", "json").stdout)
    assert data["source"] == str(tree)
    assert data["live_revision"] == 1
    assert data["has_changes"] is True
    assert data["summary"] == {"create": 0, "update": 1, "delete": 0, "unchanged": 1}
    assert [(c["kind"], c["name"], c["action"]) for c in data["changes"]] == [
        ("Agent", "scanner", "unchanged"),
        ("Agent", "seo", "update"),
    ]
    assert data["changes"][1]["fields"] == [
        {"path": "spec.priority", "before": "medium", "after": "low"}
    ]


def test_apply_json(cli: CliRunnerFn, tree: Path) -> None:
    data = json.loads(cli("apply", str(tree), "-o", "json").stdout)
    assert data["dry_run"] is False
    assert data["live_revision"] == 1
    assert data["plan"]["live_revision"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["revision"]["created_at"])
    assert data["revision"]["revision"] == 1
    assert data["revision"]["summary"] == {
        "created": 2,
        "updated": 0,
        "deleted": 0,
        "unchanged": 0,
    }
    again = json.loads(cli("apply", str(tree), "-o", "json").stdout)
    assert again["revision"] is None
    assert again["plan"]["has_changes"] is False


def test_history_and_rollback(cli: CliRunnerFn, tree: Path) -> None:
    assert cli("history").stdout == "No revisions yet.\n"
    assert json.loads(cli("history", "-o", "json").stdout) == []
    cli("apply", str(tree))
    write_agent(tree, "seo", "low")
    cli("apply", str(tree))
    back = cli("rollback", "1")
    assert back.exit_code == 0
    assert back.stdout == (
        "~ update Agent/seo\n"
        '    spec.priority: "low" -> "medium"\n'
        "\n"
        "Plan: 0 to create, 1 to update, 0 to delete, 1 unchanged.\n"
        "\n"
        "Rolled back to revision 1 as revision 3 (0 created, 1 updated, 0 deleted).\n"
    )
    assert cli("rollback", "3").stdout == "No changes. Live state already matches revision 3.\n"
    lines = cli("history").stdout.splitlines()
    assert lines[0].split() == ["REVISION", "CREATED", "SOURCE", "COMMIT", "CHANGES", "NOTE"]
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    src = re.escape(str(tree))
    assert re.fullmatch(rf"1\s+{stamp}\s+{src}\s+-\s+\+2 ~0 -0", lines[1])
    assert re.fullmatch(rf"2\s+{stamp}\s+{src}\s+-\s+\+0 ~1 -0", lines[2])
    assert re.fullmatch(rf"3\s+{stamp}\s+{src}\s+-\s+\+0 ~1 -0\s+rollback of 1", lines[3])
    data = json.loads(cli("history", "-o", "json").stdout)
    assert [(r["revision"], r["rollback_of"]) for r in data] == [(1, None), (2, None), (3, 1)]
    assert "rollback_of: 1" in cli("history", "-o", "yaml").stdout


def test_rollback_to_an_unknown_revision(cli: CliRunnerFn, tree: Path, tmp_path: Path) -> None:
    nothing = cli("rollback", "9")
    assert nothing.exit_code == 1
    assert nothing.stderr == "error: revision 9 does not exist\n"
    assert not (tmp_path / "state.db").exists()
    cli("apply", str(tree))
    missing = cli("rollback", "9")
    assert (missing.exit_code, missing.stderr) == (1, "error: revision 9 does not exist\n")


def test_rollback_dry_run(cli: CliRunnerFn, tree: Path) -> None:
    cli("apply", str(tree))
    (tree / "agents" / "seo.yaml").unlink()
    cli("apply", str(tree), "--prune")
    dry = cli("rollback", "1", "--dry-run")
    assert dry.stdout == (
        "+ create Agent/seo\n\nPlan: 1 to create, 0 to update, 0 to delete, 1 unchanged.\n"
        "\nDry run: nothing was applied.\n"
    )
    assert len(json.loads(cli("history", "-o", "json").stdout)) == 2


def test_state_env_variable_is_honoured(tree: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    runner = CliRunner()
    result = runner.invoke(main, ["apply", str(tree)], env={"DEVSKYY_STATE_URL": url})
    assert result.exit_code == 0
    assert (tmp_path / "env.db").exists()


# -- a real process -----------------------------------------------------------------------


def _console_script() -> str | None:
    candidate = Path(sys.executable).with_name("devskyy")
    return str(candidate) if candidate.exists() else shutil.which("devskyy")


@pytest.mark.slow
def test_installed_console_script_in_a_temp_dir(tmp_path: Path) -> None:
    exe = _console_script()
    if exe is None:
        pytest.skip("the devskyy console script is not installed")
    write_agent(tmp_path / "manifests", "scanner", "high")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVSKYY_")}
    env["NO_COLOR"] = "1"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, *args],
            check=False,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    # default PATH (manifests/) and default store (./.devskyy/state.db)
    applied = run("apply")
    assert (applied.returncode, applied.stderr) == (0, "")
    assert applied.stdout.endswith("Applied revision 1 (1 created, 0 updated, 0 deleted).\n")
    assert (tmp_path / ".devskyy" / "state.db").exists()
    assert run("plan", "--detailed-exitcode").returncode == 0
    assert run("apply").stdout == "No changes. Live state matches manifests/ (revision 1).\n"
    # --state points somewhere else entirely
    other = f"sqlite:///{tmp_path / 'other.db'}"
    pending = run("--state", other, "plan", "--detailed-exitcode")
    assert pending.returncode == 2
    assert pending.stdout == (
        "+ create Agent/scanner\n\nPlan: 1 to create, 0 to update, 0 to delete, 0 unchanged.\n"
    )
    bad = run("--state", other, "plan", "elsewhere", "--detailed-exitcode")
    assert bad.returncode == 1
    assert bad.stderr == (
        "elsewhere:1:1: <file>: no such file or directory\nelsewhere: 1 problem\n"
    )
    assert "Traceback" not in bad.stderr


def test_apply_and_rollback_are_audited(cli: CliRunnerFn, tree: Path, state_url: str) -> None:
    cli("apply", str(tree))
    cli("apply", str(tree))  # no changes: nothing to audit
    cli("apply", str(tree), "--dry-run")
    write_agent(tree, "seo", "low")
    cli("apply", str(tree))
    cli("rollback", "1")
    engine = open_engine(state_url)
    manager = SecurityManager(engine, None, SqlStateStore(engine).live)
    try:
        events = manager.get_audit_log(event_type="manifests.applied")
    finally:
        manager.close()
        engine.dispose()
    assert [(e["actor"], e["details"]) for e in events] == [
        ("cli", {"revision": 1, "source": str(tree), "created": 2, "updated": 0, "deleted": 0}),
        ("cli", {"revision": 2, "source": str(tree), "created": 0, "updated": 1, "deleted": 0}),
        (
            "cli",
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
