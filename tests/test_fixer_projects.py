"""The scanner and fixer on fixture projects that have their own configuration: ruff's
(pyproject, ruff.toml, .ruff.toml) and bandit's ([tool.bandit], .bandit, # nosec). The
project's own rules judge and fix it; afterwards the project's own ``ruff check`` and
``ruff format --check`` report nothing new, the rescan finds no safe fix left, and the
fixer's remaining numbers are the rescan's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from codecheck_helpers import call, own_ruff, own_ruff_format, write_tree

from devskyy.agents.fixer import FixerAgent
from devskyy.agents.scanner import ScannerAgent
from devskyy.errors import PermanentError

PYPROJECT = """\
[project]
name = "acme"
version = "1.0"

[tool.ruff]
line-length = 79
target-version = "py310"

[tool.ruff.lint]
select = ["E", "F", "I", "SIM", "UP"]
ignore = ["SIM300"]

[tool.ruff.lint.isort]
force-single-line = true

[tool.ruff.lint.per-file-ignores]
"tests/*" = ["F401"]
"""
CORE = """\
import sys, os
from acme import util
import requests
from acme.util import double, half


def check(x):
    assert 5 == x
    return util, requests, double, half


def describe(value):
    return "a value that makes this line longer than seventy-nine columns: " + str(value)


print(sys.argv)
"""
TEST_CORE = """\
import json

from acme.core import check


def test_check():
    assert check(5)
"""
UTIL = "def double(x):\n    return 2 * x\n\n\ndef half(x):\n    return x / 2\n"


def acme(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "acme-project",
        {
            "pyproject.toml": PYPROJECT,
            "acme/__init__.py": "",
            "acme/util.py": UTIL,
            "acme/core.py": CORE,
            "tests/test_core.py": TEST_CORE,
        },
    )


def rules(report: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(i["file"], i["line"], i["rule"]) for i in report["issues"]]


def test_the_projects_pyproject_is_its_policy(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    project = acme(tmp_path)
    before_lint = own_ruff(project)
    before_format = own_ruff_format(project)
    report = call(scanner, scan_type="quick", target_path=str(project))
    assert report["policy"] == {
        "ruff": {"source": "project", "file": "pyproject.toml"},
        "bandit": {"source": "devskyy", "file": "spec.config of agent scanner (banditSkip)"},
    }
    # Exactly what the project's own ruff reports: SIM300 is ignored, tests may keep
    # unused imports, no devskyy-only rule (B, PERF, C4) appears.
    assert {(f, line, r) for f, line, r in rules(report) if r != "format"} == before_lint
    assert not any(r == "SIM300" for _, _, r in rules(report))
    assert {i["file"] for i in report["issues"] if i["rule"] == "format"} == before_format
    result = call(fixer, scan_results=report)
    assert result["policy"]["ruff"] == {"source": "project", "file": "pyproject.toml"}
    core = (project / "acme" / "core.py").read_text()
    # force-single-line: one name per import, first-party after third-party.
    assert core.startswith(
        "import sys\n\nimport requests\n\nfrom acme import util\n"
        "from acme.util import double\nfrom acme.util import half\n"
    )
    assert "assert 5 == x" in core  # SIM300 is the project's choice: not swapped
    assert all(len(line) <= 79 for line in core.splitlines())  # its line length
    # The project's own lint and format checks report nothing new (here: nothing).
    after_lint = own_ruff(project)
    assert after_lint <= before_lint
    assert after_lint == set()  # ruff format split the long line (E501 went with it)
    assert own_ruff_format(project) == set()
    again = call(scanner, scan_type="quick", target_path=str(project))
    assert again["counts"]["fixable"] == 0
    assert result["remaining_counts"] == again["counts"]
    assert result["remaining_issues"] == again["issues"]


@pytest.mark.parametrize("name", ["ruff.toml", ".ruff.toml"])
def test_ruff_toml_and_dot_ruff_toml(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent, name: str
) -> None:
    project = write_tree(
        tmp_path / "p",
        {
            name: 'line-length = 40\n[lint]\nselect = ["F401"]\n',
            # A pyproject without [tool.ruff] does not count as a ruff configuration.
            "pyproject.toml": '[project]\nname = "p"\n',
            "m.py": "import os\nx = {'key': 'a value', 'other': 'another value'}\n",
        },
    )
    report = call(scanner, scan_type="quick", target_path=str(project))
    assert report["policy"]["ruff"] == {"source": "project", "file": name}
    # The project's file decides selection, line length and target: devskyy's defaults,
    # which ruff is not given, are not shown as if they were the settings.
    assert report["settings"]["ruff"] == {"config": name}
    assert rules(report) == [("m.py", 1, "F401"), ("m.py", 2, "format")]
    call(fixer, scan_results=report)
    assert (project / "m.py").read_text() == (
        'x = {\n    "key": "a value",\n    "other": "another value",\n}\n'
    )
    assert own_ruff(project) == set()
    assert own_ruff_format(project) == set()


def test_a_project_without_configuration_gets_devskyys_policy(
    tmp_path: Path, scanner: ScannerAgent
) -> None:
    # devskyy's own pyproject (above tmp_path? no: this must not leak either way).
    project = write_tree(tmp_path / "p", {"m.py": "import os\n"})
    report = call(scanner, scan_type="quick", target_path=str(project))
    assert report["policy"]["ruff"] == {
        "source": "devskyy",
        "file": "spec.config of agent scanner (ruffSelect, lineLength, ruffTargetVersion)",
    }
    assert report["settings"]["ruff"] == {
        "config": None,
        "select": ["E4", "E7", "E9", "F", "W", "I", "B", "UP", "C4", "SIM", "PERF"],
        "target_version": "py39",
        "line_length": 88,
    }


def test_first_party_from_the_target_root(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    """``helpers`` is first-party only from the target root (ruff's src = ["."]); the
    fixer runs ruff from there too, so its import sorting is the scanner's."""
    project = write_tree(
        tmp_path / "p",
        {
            "helpers.py": "VALUE = 1\n",
            "app/main.py": "import helpers\nimport requests\nimport os\n\n"
            "print(helpers, requests, os)\n",
        },
    )
    report = call(scanner, scan_type="quick", target_path=str(project))
    assert rules(report) == [("app/main.py", 1, "I001")]
    result = call(fixer, scan_results=report)
    assert (project / "app/main.py").read_text() == (
        "import os\n\nimport requests\n\nimport helpers\n\nprint(helpers, requests, os)\n"
    )
    again = call(scanner, scan_type="quick", target_path=str(project))
    assert again["issues"] == []
    assert result["remaining_counts"] == again["counts"]


def test_a_fix_that_makes_another_fix_possible_is_finished(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    """UP006 leaves ``from typing import List`` unused: a second round removes it, so
    the rescan finds no safe fix left (and the fix records name both)."""
    project = write_tree(
        tmp_path / "p",
        {
            "ruff.toml": 'target-version = "py310"\n[lint]\nselect = ["F", "UP"]\n',
            "m.py": (
                "from typing import List\n\n\ndef f(x: List[int]) -> List[int]:\n    return x\n"
            ),
        },
    )
    report = call(scanner, scan_type="quick", target_path=str(project))
    assert [(r, i["fixable"]) for r, i in zip(rules(report), report["issues"], strict=True)] == [
        (("m.py", 1, "UP035"), False),
        (("m.py", 4, "UP006"), True),
        (("m.py", 4, "UP006"), True),
    ]
    result = call(fixer, scan_results=report)
    assert (project / "m.py").read_text() == "def f(x: list[int]) -> list[int]:\n    return x\n"
    assert [(f["rule"], f["line"]) for f in result["fixes_applied"]] == [
        ("UP006", 4),
        ("UP006", 4),
        ("F401", 1),  # the second round: the import UP006 left unused
    ]
    again = call(scanner, scan_type="quick", target_path=str(project))
    assert again["counts"] == result["remaining_counts"]
    assert again["counts"]["total"] == 0


def test_project_fix_true_and_unsafe_fixes_are_overridden(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    """A project that sets ``fix = true`` and ``unsafe-fixes = true``: the scan writes
    nothing, and the fixer applies only safe fixes (C408's rewrite is unsafe)."""
    project = write_tree(
        tmp_path / "p",
        {
            "ruff.toml": 'fix = true\nunsafe-fixes = true\n[lint]\nselect = ["F401", "C408"]\n',
            "m.py": "import os\n\nx = dict()\n",
        },
    )
    report = call(scanner, scan_type="quick", target_path=str(project))
    assert (project / "m.py").read_text() == "import os\n\nx = dict()\n"
    assert [(r, i["fixable"]) for r, i in zip(rules(report), report["issues"], strict=True)] == [
        (("m.py", 1, "F401"), True),
        (("m.py", 3, "C408"), False),
    ]
    call(fixer, scan_results=report)
    assert (project / "m.py").read_text() == "x = dict()\n"


def test_a_changed_configuration_refuses_the_fix(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    project = acme(tmp_path)
    report = call(scanner, scan_type="quick", target_path=str(project))
    (project / "pyproject.toml").write_text(PYPROJECT.replace("79", "100"))
    with pytest.raises(PermanentError) as info:
        call(fixer, scan_results=report)
    assert str(info.value) == (
        "the project's configuration pyproject.toml changed since the scan; scan again"
    )
    assert (project / "acme" / "core.py").read_text() == CORE


def test_a_broken_configuration_is_a_permanent_error(tmp_path: Path, scanner: ScannerAgent) -> None:
    project = write_tree(tmp_path / "p", {"ruff.toml": "line-length = 'long'\n", "m.py": ""})
    with pytest.raises(PermanentError) as info:
        call(scanner, scan_type="quick", target_path=str(project))
    assert str(info.value).startswith("ruff check failed (exit 2): ruff failed")
    assert "ruff.toml" in str(info.value)
    bad = write_tree(tmp_path / "q", {"pyproject.toml": "[tool.ruff\n", "m.py": ""})
    with pytest.raises(PermanentError, match=r"pyproject.toml: not valid TOML"):
        call(scanner, scan_type="quick", target_path=str(bad))


BANDIT_CODE = """\
import subprocess


def a(cmd):
    return subprocess.run(cmd, shell=True)


def b(cmd):
    return subprocess.run(cmd, shell=True)  # nosec B602


def c():
    assert a
    return eval("1")
"""


@pytest.mark.parametrize(
    ("files", "source"),
    [
        ({"pyproject.toml": '[tool.bandit]\nskips = ["B307"]\n'}, "pyproject.toml"),
        # Only its policy options count: an output file or format would take the
        # results away from devskyy.
        ({".bandit": "[bandit]\nskips = B307\noutput = report.json\nformat = txt\n"}, ".bandit"),
    ],
)
def test_bandit_reads_the_projects_configuration(
    tmp_path: Path, scanner: ScannerAgent, files: dict[str, str], source: str
) -> None:
    project = write_tree(tmp_path / "p", {**files, "m.py": BANDIT_CODE})
    report = call(scanner, scan_type="security", target_path=str(project))
    assert report["policy"]["bandit"] == {"source": "project", "file": source}
    assert not (project / "report.json").exists()
    # The project's skips replace devskyy's (B101 assert is reported now; B307 eval is
    # skipped), and # nosec hides the second shell=True.
    assert rules(report) == [
        ("m.py", 1, "B404"),
        ("m.py", 5, "B602"),
        ("m.py", 13, "B101"),
    ]
    devskyys = write_tree(tmp_path / "q", {"m.py": BANDIT_CODE})
    report = call(scanner, scan_type="security", target_path=str(devskyys))
    assert report["policy"]["bandit"]["source"] == "devskyy"
    assert rules(report) == [("m.py", 1, "B404"), ("m.py", 5, "B602"), ("m.py", 14, "B307")]
    assert json.dumps(report["settings"]["bandit_skip"]) == '["B101"]'


def test_the_projects_exclusions_hold_for_named_files(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    """ruff runs with --force-exclude: a file the project excludes is not judged even
    though devskyy names every file on the command line (and a forged report naming it
    changes nothing)."""
    project = write_tree(
        tmp_path / "p",
        {
            "ruff.toml": 'extend-exclude = ["generated"]\n[lint]\nselect = ["F401"]\n',
            "generated/api.py": "import os\n",
            "m.py": "import os\n",
        },
    )
    report = call(scanner, scan_type="quick", target_path=str(project))
    assert rules(report) == [("m.py", 1, "F401")]
    forged = {**report, "issues": [{**report["issues"][0], "file": "generated/api.py"}]}
    forged["counts"] = {**report["counts"]}
    result = call(fixer, scan_results=forged)
    assert (project / "generated" / "api.py").read_text() == "import os\n"
    assert result["changed_files"] == []
