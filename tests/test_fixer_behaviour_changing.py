"""Fixes ruff marks safe that change behaviour are reported, never applied (ruff.py).

Found in devskyy's trials on real libraries, where ruff's own ``--fix`` broke their
tests: RUF023 sorts ``__slots__`` (attrs builds a class's repr in slot order), PLW0245
turns ``super.__hash__(x)`` into ``super().__hash__(x)`` (another method). The scan shows
them with the reason, not as fixable; the fixer leaves them while fixing the rest, its
remaining issues are the rescan's, and the project's own ``ruff check --fix`` would have
made exactly those two edits.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from codecheck_helpers import call, write_tree

from devskyy.agents.codecheck.fixing import LARGE_FILE_LINES
from devskyy.agents.codecheck.ruff import ruff_bin
from devskyy.agents.fixer import FixerAgent
from devskyy.agents.scanner import ScannerAgent

PYPROJECT = """\
[project]
name = "slots"
version = "1.0"

[tool.ruff.lint]
select = ["F401", "RUF023", "PLW0245"]
"""
MODULE = """\
import os


class Point:
    __slots__ = ("y", "x")


class Key(Point):
    def __hash__(self):
        return super.__hash__(self)
"""


def test_behaviour_changing_safe_fixes_are_reported_not_applied(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    project = write_tree(tmp_path / "slots", {"pyproject.toml": PYPROJECT, "m.py": MODULE})
    report = call(scanner, scan_type="quick", target_path=str(project))
    found = {i["rule"]: (i["fixable"], i["message"]) for i in report["issues"]}
    assert found == {
        "F401": (True, "`os` imported but unused"),
        "RUF023": (
            False,
            "`Point.__slots__` is not sorted (ruff's fix is not applied: sorting __slots__ "
            "changes their order, which class builders such as attrs use)",
        ),
        "PLW0245": (
            False,
            "`super` call is missing parentheses (ruff's fix is not applied: "
            "super.__hash__(x) and super().__hash__(x) call different methods)",
        ),
    }
    result = call(fixer, scan_results=report)
    assert [f["rule"] for f in result["fixes_applied"]] == ["F401"]
    assert (project / "m.py").read_text() == MODULE.removeprefix("import os\n\n\n")
    again = call(scanner, scan_type="quick", target_path=str(project))
    assert sorted(i["rule"] for i in again["issues"]) == ["PLW0245", "RUF023"]
    assert result["remaining_issues"] == again["issues"]
    # ruff itself calls both fixes safe: its own --fix would have made them.
    direct = subprocess.run(
        [ruff_bin(), "check", "--no-cache", "--fix", "m.py"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert direct.returncode == 0, direct.stdout + direct.stderr
    fixed = (project / "m.py").read_text()
    assert '__slots__ = ("x", "y")' in fixed
    assert "super().__hash__(self)" in fixed


def test_a_report_that_names_them_fixable_does_not_get_them_applied(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    # A report from a devskyy before BEHAVIOUR_CHANGING_FIXES called them fixable; in a
    # large file the fixer hands such whole rules to ruff's --fix without checking first.
    body = MODULE.removeprefix("import os\n\n\n")
    large = "import os\n" + "x = 1\n" * LARGE_FILE_LINES + "\n\n" + body
    project = write_tree(tmp_path / "slots", {"pyproject.toml": PYPROJECT, "m.py": large})
    report = call(scanner, scan_type="quick", target_path=str(project))
    for issue in report["issues"]:
        issue["fixable"] = True
    result = call(fixer, scan_results=report)
    assert [f["rule"] for f in result["fixes_applied"]] == ["F401"]
    assert (project / "m.py").read_text() == large.removeprefix("import os\n")
