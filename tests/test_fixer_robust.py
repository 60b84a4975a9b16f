"""Scanning any tree: a symlink loop, a dangling link, a FIFO, an unreadable file or a
file that vanishes mid-scan is a ``skipped`` finding, never a failed scan; notebooks are
scanned as ruff does; a syntax error is high; the analyzers' deterministic failures are
permanent errors, so the workflow engine does not retry them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from codecheck_helpers import ROOT, call, make_agent, write_tree
from test_scan_and_fix import MANIFESTS, cli

from devskyy.agents.codecheck.files import walk_tree
from devskyy.agents.codecheck.proc import Completed, classify, tool_error
from devskyy.agents.codecheck.scanning import ScanSettings, ScanType, scan_files
from devskyy.agents.fixer import FixerAgent
from devskyy.agents.scanner import ScannerAgent
from devskyy.errors import PermanentError, TemporaryError
from devskyy.model.runs import RunRecord
from devskyy.runtime.system import open_system

CODE = "import os\n"


def skipped(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["file"], i["message"]) for i in report["issues"] if i["rule"] == "skipped"]


def test_loops_links_and_fifos_are_skipped_with_a_finding(
    tmp_path: Path, scanner: ScannerAgent
) -> None:
    project = write_tree(tmp_path / "p", {"ok.py": CODE, "pkg/mod.py": CODE})
    (project / "loop_a.py").symlink_to("loop_b.py")
    (project / "loop_b.py").symlink_to("loop_a.py")
    (project / "self.py").symlink_to("self.py")
    (project / "dangling.py").symlink_to("nowhere.py")
    (project / "pkg" / "back").symlink_to("..")  # a folder loop: never followed
    os.mkfifo(project / "pipe.py")
    report = call(scanner, scan_type="full", target_path=str(project))
    assert report["files_scanned"] == 2
    assert skipped(report) == [
        ("dangling.py", "not scanned: a dangling symlink"),
        ("loop_a.py", "not scanned: a symlink loop"),
        ("loop_b.py", "not scanned: a symlink loop"),
        ("pipe.py", "not scanned: a FIFO (named pipe), not a regular file"),
        ("self.py", "not scanned: a symlink loop"),
    ]
    assert {i["file"] for i in report["issues"] if i["rule"] == "F401"} == {
        "ok.py",
        "pkg/mod.py",
    }
    skip = next(i for i in report["issues"] if i["rule"] == "skipped")
    assert (skip["tool"], skip["severity"], skip["fixable"]) == ("devskyy-walk", "low", False)
    # The fixer leaves the skipped entries as they are, and its numbers stay the rescan's.
    fixer = make_agent(FixerAgent, tmp_path, "fixer")
    result = call(fixer, scan_results=report)
    again = call(scanner, scan_type="full", target_path=str(project))
    assert result["remaining_counts"] == again["counts"]
    assert skipped(again) == skipped(report)


def walk_as_nobody(project: Path) -> dict[str, Any]:
    """``walk_tree`` as an unprivileged user: root reads every file, so when the tests
    run as root a forked child drops to ``nobody`` first (the code is already loaded)."""
    if os.geteuid() != 0:
        walked = walk_tree(project, (".py",))
        return {"files": [p.name for p in walked.files], "skipped": walked.skipped}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, walk, report, leave without cleanup
        code = 1
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            walked = walk_tree(project, (".py",))
            data = {"files": [p.name for p in walked.files], "skipped": walked.skipped}
            os.write(write_end, json.dumps(data).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        out = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    result: dict[str, Any] = json.loads(out)
    return result


def test_unreadable_files_and_folders_are_skipped() -> None:
    base = Path("/tmp") / f"devskyy-unreadable-{os.getpid()}"
    shutil.rmtree(base, ignore_errors=True)
    project = write_tree(base, {"ok.py": CODE, "secret.py": CODE, "closed/inner.py": CODE})
    try:
        base.chmod(0o755)
        (project / "secret.py").chmod(0o000)
        (project / "closed").chmod(0o000)
        assert json.loads(json.dumps(walk_as_nobody(project))) == {
            "files": ["ok.py"],
            "skipped": [
                ["closed", "folder not listed: no permission to read it"],
                ["secret.py", "no permission to read it"],
            ],
        }
    finally:
        (project / "closed").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_a_file_that_vanishes_mid_scan_is_skipped(tmp_path: Path) -> None:
    project = write_tree(tmp_path / "p", {"ok.py": CODE, "gone.py": CODE})
    files = walk_tree(project, (".py",)).files
    (project / "gone.py").unlink()  # after the walk, before the analyzers
    issues = asyncio.run(scan_files(project, files, ScanType.FULL, ScanSettings()))
    assert [(i.file, i.rule, i.tool, i.message) for i in issues if i.file == "gone.py"] == [
        ("gone.py", "skipped", "devskyy-walk", "not scanned: the file vanished during the scan")
    ]
    assert [(i.file, i.rule) for i in issues if i.file == "ok.py"] == [("ok.py", "F401")]


NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "metadata": {},
            "source": ["import os\n", "import sys\n", "print(sys)\n"],
            "outputs": [],
            "execution_count": None,
        },
        {"cell_type": "markdown", "metadata": {}, "source": ["# notes"]},
        {
            "cell_type": "code",
            "metadata": {},
            "source": ["x=1"],
            "outputs": [],
            "execution_count": None,
        },
    ],
    "metadata": {"language_info": {"name": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_notebooks_are_scanned_as_ruff_does_and_reported(
    tmp_path: Path, scanner: ScannerAgent
) -> None:
    project = write_tree(tmp_path / "p", {"analysis.ipynb": json.dumps(NOTEBOOK)})
    report = call(scanner, scan_type="full", target_path=str(project))
    assert report["files_scanned"] == 1
    assert [
        (i["line"], i["rule"], i["tool"], i["message"], i["fixable"]) for i in report["issues"]
    ] == [
        (1, "I001", "ruff", "cell 1: Import block is un-sorted or un-formatted", False),
        (1, "F401", "ruff", "cell 1: `os` imported but unused", False),
        (
            3,
            "format",
            "ruff-format",
            "File is not formatted (ruff format would change 5 lines)",
            False,
        ),
    ]
    # Reported, not fixed (ruff's lines are per cell): nothing for the fixer to do.
    assert report["counts"]["fixable"] == 0


def test_syntax_errors_are_high(tmp_path: Path, scanner: ScannerAgent) -> None:
    project = write_tree(tmp_path / "p", {"bad.py": "def f(:\n    pass\n"})
    report = call(scanner, scan_type="quick", target_path=str(project))
    assert [(i["rule"], i["severity"]) for i in report["issues"]] == [
        ("invalid-syntax", "high"),
        ("invalid-syntax", "high"),
    ]
    assert report["counts"]["by_severity"]["high"] == 2


def run_workflow(params: dict[str, Any]) -> RunRecord:
    async def go() -> RunRecord:
        async with await open_system() as system:
            assert system.workflows is not None
            return await system.workflows.run("scan_and_fix", params)

    return asyncio.run(go())


def test_a_broken_project_configuration_fails_the_scan_once_not_three_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for rel in MANIFESTS:
        (tmp_path / "manifests" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "manifests" / rel, tmp_path / "manifests" / rel)
    assert cli("apply", "manifests").exit_code == 0
    write_tree(tmp_path / "proj", {"ruff.toml": "line-length = 'long'\n", "m.py": CODE})
    record = run_workflow({"target_path": "proj"})
    scan = next(s for s in record.steps if s.name == "scan")
    assert (scan.status.value, scan.attempts) == ("failed", 1)
    assert "PermanentError: ruff check failed (exit 2)" in (scan.error or "")


def test_a_killed_analyzer_is_temporary_a_failing_one_permanent() -> None:
    killed = classify(tool_error("ruff check", Completed(-9, "", "")))
    assert isinstance(killed, TemporaryError)
    assert str(killed) == "ruff check was killed by signal 9: (no output)"
    failed = classify(tool_error("bandit", Completed(2, "", "error: bad config\n")))
    assert isinstance(failed, PermanentError)
    assert str(failed) == "bandit failed (exit 2): error: bad config"
