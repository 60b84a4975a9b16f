"""bandit as the security scanner: its findings with severity and confidence.

bandit runs as ``python -m bandit -f json`` in its own process (so it works on another
core while ruff runs), on the exact file list the walker chose, with no config file of
the scanned project (``# nosec`` comments are still honoured). Its hard-coded password
findings quote the password; devskyy replaces the value before the message goes anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from devskyy.agents.codecheck.files import relative
from devskyy.agents.codecheck.issues import Issue, Severity, Tool
from devskyy.agents.codecheck.proc import ToolError, chunks, python, run

SECRET_RULES = frozenset({"B105", "B106", "B107"})
ROTATE_ACTION = "manual: move the secret to the environment or a secret store, then rotate it"
DEFAULT_SKIP = ("B101",)  # assert_used: noise in test suites; asserts are not a vulnerability
_QUOTED = re.compile(r"""(:\s*)(['"]).*\2\s*$""")
_SEVERITY = {"HIGH": Severity.HIGH, "MEDIUM": Severity.MEDIUM, "LOW": Severity.LOW}


@cache
def bandit_version() -> str:
    return version("bandit")


def redact(rule: str, message: str) -> str:
    """bandit's message without any quoted secret value."""
    if rule in SECRET_RULES:
        return _QUOTED.sub(r"\1(value hidden)", message)
    return message


def _issue(root: Path, item: dict[str, Any]) -> Issue:
    rule = str(item["test_id"])
    return Issue(
        file=relative(root, Path(item["filename"])),
        line=int(item["line_number"]),
        column=int(item.get("col_offset", 0)) + 1,
        rule=rule,
        tool=Tool.BANDIT.value,
        severity=_SEVERITY.get(str(item["issue_severity"]), Severity.LOW).value,
        confidence=str(item["issue_confidence"]).lower(),
        message=f"{redact(rule, str(item['issue_text']))} ({item.get('test_name', '')})",
        action=ROTATE_ACTION if rule in SECRET_RULES else None,
    )


def parse_output(root: Path, stdout: str) -> list[Issue]:
    """Issues from ``bandit -f json`` (paths made relative to ``root``)."""
    data = json.loads(stdout)
    return [_issue(root, item) for item in data.get("results", [])]


async def scan(
    root: Path, files: Sequence[Path], skip: Sequence[str] = DEFAULT_SKIP
) -> list[Issue]:
    """bandit on ``files``; every finding, whatever its severity or confidence."""
    issues: list[Issue] = []
    for part in chunks([str(f) for f in files]):
        argv = [python(), "-m", "bandit", "-f", "json", "-q", "--exit-zero"]
        if skip:
            argv += ["-s", ",".join(skip)]
        done = await run([*argv, "--", *part], cwd=root)
        if done.returncode != 0 or not done.stdout.strip():
            raise ToolError(f"bandit failed: {done.stderr.strip()[:500]}")
        issues += parse_output(root, done.stdout)
    return issues
