"""scan_and_fix with verify_command, run by the workflow engine on a fixture project with
a custom YAML loader (a SafeLoader subclass with an !env constructor) and shell commands
of every kind: the project's own tests run before and after the fix; when they passed
before and fail after, the restore step (trigger: any_failed) puts the backup back."""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from codecheck_helpers import ROOT, tree_bytes, write_tree
from test_scan_and_fix import MANIFESTS, cli

from devskyy.model.runs import RunRecord
from devskyy.runtime.system import open_system
from devskyy.runtime.workflows import to_guide_shape

CONFIG = """\
import os

import yaml


class IncludeLoader(yaml.SafeLoader):
    \"\"\"Safe YAML plus !env NAME: the value of an environment variable.\"\"\"


def _env(loader, node):
    return os.environ.get(loader.construct_scalar(node), "")


IncludeLoader.add_constructor("!env", _env)


def load(text):
    return yaml.load(text, Loader=IncludeLoader)


def load_plain(text):
    return yaml.load(text, Loader=yaml.FullLoader)
"""
SHELL = """\
import subprocess
import os


def listing():
    return subprocess.run("ls -la", shell=True, capture_output=True, text=True).stdout


def env_foo():
    return subprocess.run("FOO=bar env", shell=True, capture_output=True, text=True).stdout


def timed():
    return subprocess.run("time ls", shell=True, capture_output=True, text=True)


def bash_listing():
    return subprocess.Popen("ls -la", shell=True, executable="/bin/bash")
"""
TESTS = """\
from shop.config import load, load_plain
from shop.shell import env_foo, listing


def test_env_loader(monkeypatch):
    monkeypatch.setenv("SHOP_NAME", "acme")
    assert load("name: !env SHOP_NAME") == {"name": "acme"}
    assert load_plain("a: 1") == {"a": 1}


def test_listing():
    assert "pyproject.toml" in listing()


def test_env_foo():
    assert "FOO=bar" in env_foo()
"""
GREP_TEST = """\
from pathlib import Path


def test_source_keeps_its_imports():
    # A test that reads source text: the unused import's removal breaks it.
    assert "import os" in Path("shop/shell.py").read_text()
"""
VERIFY = f"{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider"
FIXED_SHELL = """\
import subprocess


def listing():
    return subprocess.run(["ls", "-la"], capture_output=True, text=True).stdout


def env_foo():
    return subprocess.run(
        "FOO=bar env", shell=True, capture_output=True, text=True
    ).stdout


def timed():
    return subprocess.run("time ls", shell=True, capture_output=True, text=True)


def bash_listing():
    return subprocess.Popen("ls -la", shell=True, executable="/bin/bash")
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for rel in MANIFESTS:
        (tmp_path / "manifests" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "manifests" / rel, tmp_path / "manifests" / rel)
    assert cli("apply", "manifests").exit_code == 0
    return tmp_path


def shop(workdir: Path, *extra: tuple[str, str]) -> Path:
    return write_tree(
        workdir / "shop-project",
        {
            "pyproject.toml": '[project]\nname = "shop"\n',
            "shop/__init__.py": "",
            "shop/config.py": CONFIG,
            "shop/shell.py": SHELL,
            "tests/test_shop.py": TESTS,
            **dict(extra),
        },
    )


def run(params: dict[str, Any]) -> RunRecord:
    async def go() -> RunRecord:
        async with await open_system() as system:
            assert system.workflows is not None
            return await system.workflows.run("scan_and_fix", params)

    return asyncio.run(go())


def statuses(record: RunRecord) -> dict[str, str]:
    return {s.name: s.status.value for s in record.steps}


def by_rule(shape: dict[str, Any], step: str, rule: str) -> list[dict[str, Any]]:
    return [i for i in shape[step]["issues"] if i["rule"] == rule]


@pytest.mark.slow
def test_tests_pass_before_and_after_so_the_fix_stays(workdir: Path) -> None:
    project = shop(workdir)
    record = run({"target_path": "shop-project", "verify_command": VERIFY})
    shape = to_guide_shape(record)
    assert statuses(record) == {
        "security": "succeeded",
        "scan": "succeeded",
        "verify_before": "succeeded",
        "fix": "succeeded",
        "verify_after": "succeeded",
        "restore": "skipped",
        "rescan": "succeeded",
    }
    assert (shape["verify_before"]["passed"], shape["verify_after"]["passed"]) == (True, True)
    assert shape["verify_after"]["stage"] == "after the fix"
    # Only `ls -la` without executable= lost its shell; the rest is for a person, with why.
    assert (project / "shop" / "shell.py").read_text() == FIXED_SHELL
    reasons = [i["action"] for i in by_rule(shape, "rescan", "B602")]
    assert reasons == [
        "review: shell=True kept: the command starts with a variable assignment (FOO=bar)",
        "review: shell=True kept: its first word `time` is a shell keyword",
        "review: shell=True kept: executable= names the shell (or program) that runs the command",
    ]
    # Neither YAML load changed under fix_type auto; the custom loader is for review.
    assert (project / "shop" / "config.py").read_text() == CONFIG
    b506 = {i["line"]: i["action"] for i in by_rule(shape, "rescan", "B506")}
    assert b506[18].startswith("review: Loader=IncludeLoader is not one of PyYAML's own")
    assert b506[22].startswith("fix_type: security rewrites it to yaml.safe_load")


@pytest.mark.slow
def test_security_fix_type_keeps_the_custom_loader(workdir: Path) -> None:
    project = shop(workdir)
    record = run({"target_path": "shop-project", "verify_command": VERIFY, "fix_type": "security"})
    shape = to_guide_shape(record)
    assert statuses(record)["verify_after"] == "succeeded"
    config = (project / "shop" / "config.py").read_text()
    assert "return yaml.load(text, Loader=IncludeLoader)" in config  # not touched
    assert "return yaml.safe_load(text)" in config  # FullLoader: unsafe by definition
    labelled = [
        (f["rule"], f["line"], f["behaviour_change"]) for f in shape["fix"]["fixes_applied"]
    ]
    assert labelled == [
        (
            "B506",
            22,
            "behaviour change: yaml.safe_load refuses the !!python/* tags this loader accepted",
        ),
        ("B602", 6, None),
    ]


@pytest.mark.slow
def test_a_fix_that_breaks_the_tests_is_restored(workdir: Path) -> None:
    project = shop(workdir, ("tests/test_source.py", GREP_TEST))
    original = tree_bytes(project)
    record = run({"target_path": "shop-project", "verify_command": VERIFY})
    shape = to_guide_shape(record)
    assert statuses(record) == {
        "security": "succeeded",
        "scan": "succeeded",
        "verify_before": "succeeded",
        "fix": "succeeded",
        "verify_after": "failed",
        "restore": "succeeded",
        "rescan": "skipped",
    }
    assert shape["status"] == "failed"
    after = next(s for s in record.steps if s.name == "verify_after")
    assert after.attempts == 1  # a failing check is an answer: not retried
    assert (after.error or "").startswith(
        f"PermanentError: verify_command {VERIFY!r} passed before the fix and exited with"
        " status 1 after it; last output:"
    )
    assert shape["fix"]["changed_files"] == ["shop/shell.py"]
    assert shape["restore"]["reverted_files"] == ["shop/shell.py"]
    assert shape["restore"]["restored_from"] == shape["fix"]["backup_path"]
    # The run still has one backup for devskyy restore (the restore step names it apart).
    assert "backup_path" not in shape["restore"]
    assert shape["restore"]["headline"] == "reverted the fixes of 1 files: shop/shell.py"
    assert tree_bytes(project) == original


@pytest.mark.slow
def test_failing_before_too_is_not_the_fixs_fault(workdir: Path) -> None:
    project = shop(workdir, ("tests/test_broken.py", "def test_broken():\n    assert False\n"))
    record = run({"target_path": "shop-project", "verify_command": VERIFY})
    shape = to_guide_shape(record)
    assert statuses(record)["verify_after"] == "succeeded"
    assert statuses(record)["restore"] == "skipped"
    assert shape["verify_before"]["passed"] is False
    assert shape["verify_after"]["note"] == (
        "it failed before the fix too: the fix is not judged by it"
    )
    # Said where people look: each step's one line (the progress line, `runs show`).
    assert shape["verify_before"]["headline"] == (
        f"{VERIFY}: failed (exit 1); it fails before the fix: the fix will not be judged by it"
    )
    assert shape["verify_after"]["headline"] == (
        f"{VERIFY}: failed (exit 1); it failed before the fix too: the fix is not judged by it"
    )
    assert (project / "shop" / "shell.py").read_text() == FIXED_SHELL


def test_verify_without_a_backup_is_refused_before_anything_changes(workdir: Path) -> None:
    project = shop(workdir)
    original = tree_bytes(project)
    record = run({"target_path": "shop-project", "verify_command": "true", "create_backup": False})
    assert statuses(record)["verify_before"] == "failed"
    assert statuses(record)["fix"] == "skipped"
    before = next(s for s in record.steps if s.name == "verify_before")
    assert before.error == (
        "PermanentError: verify_command needs create_backup: true (a fix that breaks the"
        " project is undone from its backup)"
    )
    assert tree_bytes(project) == original


def test_verify_runs_without_a_shell_unless_asked(workdir: Path) -> None:
    shop(workdir)
    # Without a shell, '&&' is just an argument of `true`: exit 0, nothing else runs.
    dry = {"target_path": "shop-project", "dry_run": True}
    words = run({**dry, "verify_command": "true && false"})
    assert to_guide_shape(words)["verify_before"]["passed"] is True
    # With verify_shell, /bin/sh runs both: `false` fails (the baseline is recorded).
    shell = run({**dry, "verify_command": "true && false", "verify_shell": True})
    shaped = to_guide_shape(shell)
    assert (shaped["verify_before"]["passed"], shaped["verify_before"]["returncode"]) == (
        False,
        1,
    )
    missing = run({**dry, "verify_command": "no-such-program-x"})
    error = next(s for s in missing.steps if s.name == "verify_before").error
    assert error == "PermanentError: verify_command: program 'no-such-program-x' not found"


def test_a_secret_the_check_prints_is_masked(workdir: Path) -> None:
    shop(workdir)
    secret = "f3b9c2e41d8a6f05e9b1c4d2a8f6e3b7c1d9"
    command = f"echo 'API_KEY = \"{secret}\"' and more"
    record = run({"target_path": "shop-project", "dry_run": True, "verify_command": command})
    shaped = to_guide_shape(record)
    assert shaped["verify_before"]["output_tail"] == ('API_KEY = "(secret hidden)" and more\n')
    # (The run's params hold the command as the user gave it; no step output repeats it.)
    assert secret not in json.dumps([step.output for step in record.steps])
