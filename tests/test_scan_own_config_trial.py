"""What a trial on real libraries (attrs 24.2.0, packaging 24.2) showed about a project's
own configuration: devskyy's complexity threshold (``maxComplexity``, DS101) is its policy
for a project without a ruff configuration only; a project that has one decides
complexity there (ruff's C901 and its ``max-complexity``), so the scan neither reports
what the project ignores nor reports a complex function twice. And a project's extras
that name the project itself (``attrs[tests]``) are not unpinned dependencies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from codecheck_helpers import call, own_ruff, write_tree

from devskyy.agents.codecheck.scanning import ScanSettings, settings_from_record
from devskyy.agents.codecheck.security import pyproject
from devskyy.agents.fixer import FixerAgent
from devskyy.agents.scanner import ScannerAgent

# McCabe complexity 12: one plus eleven branches.
BRANCHY = (
    "def branchy(x):\n"
    + "".join(f"    if x == {n}:\n        return {n}\n" for n in range(11))
    + "    return -1\n"
)


def complexity_findings(report: dict[str, Any]) -> list[tuple[str, int, str, str]]:
    return [
        (i["file"], i["line"], i["rule"], i["message"])
        for i in report["issues"]
        if i["rule"] in ("DS101", "C901")
    ]


def test_a_project_that_ignores_c901_gets_no_complexity_findings(
    tmp_path: Path, scanner: ScannerAgent
) -> None:
    files = {"m.py": BRANCHY}
    plain = write_tree(tmp_path / "plain", files)
    configured = write_tree(
        tmp_path / "configured",
        {
            **files,
            "pyproject.toml": (
                '[tool.ruff.lint]\nselect = ["F", "C901"]\n'
                'ignore = ["C901"]  # complex on purpose\n'
            ),
        },
    )
    # Without a configuration, devskyy's policy: its threshold of 10.
    report = call(scanner, scan_type="full", target_path=str(plain))
    assert complexity_findings(report) == [
        ("m.py", 1, "DS101", "`branchy` has cyclomatic complexity 12 (more than 10); split it up")
    ]
    assert report["settings"]["max_complexity"] == 10
    # With one, the project's: it ignores C901, and so does the scan.
    report = call(scanner, scan_type="full", target_path=str(configured))
    assert report["policy"]["ruff"] == {"source": "project", "file": "pyproject.toml"}
    assert complexity_findings(report) == []
    assert report["settings"]["max_complexity"] is None
    assert own_ruff(configured) == set()
    report = call(scanner, scan_type="performance", target_path=str(configured))
    assert report["issues"] == []


# PERF401 (a loop that builds a list) twice over.
APPENDS = (
    "def evens(xs):\n    out = []\n    for x in xs:\n        if x % 2 == 0:\n"
    "            out.append(x)\n    return out\n"
)


def test_a_performance_scan_and_its_fix_keep_to_the_rules_the_project_ignores(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    """``--select PERF`` on ruff's command line turns a rule back on that the project's
    ``ignore`` turns off: a performance scan narrows the project's own rules instead."""
    files = {"m.py": APPENDS, "n.py": APPENDS.replace("evens", "odds")}
    ignoring = write_tree(
        tmp_path / "ignoring",
        {
            **files,
            "pyproject.toml": '[tool.ruff.lint]\nselect = ["F", "PERF"]\nignore = ["PERF401"]\n',
        },
    )
    report = call(scanner, scan_type="performance", target_path=str(ignoring))
    assert report["issues"] == []
    assert own_ruff(ignoring) == set()
    result = call(fixer, scan_results=report, fix_type="performance")
    assert result["fixes_applied"] == []
    assert (ignoring / "m.py").read_text() == APPENDS
    # The same project without the ignore: its PERF findings, and only those.
    selecting = write_tree(
        tmp_path / "selecting",
        {**files, "pyproject.toml": '[tool.ruff.lint]\nselect = ["F", "PERF", "E"]\n'},
    )
    report = call(scanner, scan_type="performance", target_path=str(selecting))
    assert sorted((i["file"], i["line"], i["rule"]) for i in report["issues"]) == [
        ("m.py", 5, "PERF401"),
        ("n.py", 5, "PERF401"),
    ]


def test_a_project_that_selects_c901_gets_ruffs_finding_once(
    tmp_path: Path, scanner: ScannerAgent
) -> None:
    project = write_tree(
        tmp_path / "p",
        {
            "m.py": BRANCHY,
            "pyproject.toml": (
                '[tool.ruff.lint]\nselect = ["C901"]\n'
                "[tool.ruff.lint.mccabe]\nmax-complexity = 11\n"
            ),
        },
    )
    report = call(scanner, scan_type="full", target_path=str(project))
    assert complexity_findings(report) == [
        ("m.py", 1, "C901", "`branchy` is too complex (12 > 11)")
    ]
    assert own_ruff(project) == {("m.py", 1, "C901")}


def test_the_fixers_numbers_follow_the_projects_complexity_policy(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    project = write_tree(
        tmp_path / "p",
        {
            "m.py": "import os\n\n\n" + BRANCHY,
            "pyproject.toml": '[tool.ruff.lint]\nselect = ["F"]\n',
        },
    )
    report = call(scanner, scan_type="full", target_path=str(project))
    assert [(i["rule"], i["fixable"]) for i in report["issues"]] == [("F401", True)]
    result = call(fixer, scan_results=report)
    assert [(f["file"], f["rule"]) for f in result["fixes_applied"]] == [("m.py", "F401")]
    assert (project / "m.py").read_text() == BRANCHY
    again = call(scanner, scan_type="full", target_path=str(project))
    assert again["issues"] == [] == result["remaining_issues"]
    assert result["remaining_counts"] == again["counts"]
    # The fixer's settings come from the scan's record: the limit follows the policy.
    record = report["settings"]
    assert settings_from_record(record, ScanSettings(), project).perf.max_complexity is None


@pytest.mark.parametrize("bad", ["ten", 0])
def test_a_record_with_a_bad_complexity_limit_is_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match="max_complexity") as caught:
        settings_from_record({"ruff": {}, "max_complexity": bad}, ScanSettings(), tmp_path)
    assert str(caught.value) == f"scan settings: bad max_complexity {bad!r}"


def test_extras_that_name_the_project_itself_are_not_unpinned_dependencies() -> None:
    text = (
        "[project]\n"
        'name = "Acme_Lib"\n'
        'dependencies = ["requests>=2"]\n'
        "[project.optional-dependencies]\n"
        'tests = ["pytest", "acme-lib[extra]"]\n'
        'dev = ["acme.lib[tests]", "acme-libx"]\n'
    )
    found = [(i.line, i.rule, i.message) for i in pyproject("pyproject.toml", text)]
    assert found == [
        (5, "DEP001", "`pytest` has no version constraint: any future release installs"),
        (6, "DEP001", "`acme-libx` has no version constraint: any future release installs"),
    ]
