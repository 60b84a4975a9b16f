"""bandit as the security scanner: its findings with severity and confidence.

bandit runs as ``python -m bandit -f json`` in its own process (so it works on another
core while ruff runs), from the scanned root, on the exact file list the walker chose.
The project's own configuration applies when it has one (the ``skips``, ``tests``,
``exclude`` and ``configfile`` of its ``.bandit``, or ``[tool.bandit]`` in
``pyproject.toml`` via ``-c``);
otherwise devskyy's ``banditSkip``. ``# nosec`` comments are always honoured. A file
bandit could not read or parse is a ``skipped`` finding. Its hard-coded password
findings quote the password; devskyy replaces the value before the message goes anywhere.
"""

from __future__ import annotations

import configparser
import json
import os
import re
from collections.abc import Sequence
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from devskyy.agents.codecheck.files import oserror_reason, relative
from devskyy.agents.codecheck.issues import Issue, Severity, Tool, skipped_issue
from devskyy.agents.codecheck.proc import (
    ToolError,
    chunks,
    gather_in_order,
    python,
    run,
    tool_error,
)

SECRET_RULES = frozenset({"B105", "B106", "B107"})
ROTATE_ACTION = "manual: move the secret to the environment or a secret store, then rotate it"
DEFAULT_SKIP = ("B101",)  # assert_used: noise in test suites; asserts are not a vulnerability
BYTES_PER_WORKER = 200_000
MAX_WORKERS = 4
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


def _error_reason(reason: str) -> str:
    if "syntax error" in reason.lower() or "exception while scanning" in reason.lower():
        return "bandit could not parse it"
    return oserror_reason(reason)


def parse_output(root: Path, stdout: str) -> list[Issue]:
    """Issues from ``bandit -f json`` (paths made relative to ``root``), and a skipped
    finding for each file bandit reported an error for."""
    data = json.loads(stdout)
    issues = [_issue(root, item) for item in data.get("results", [])]
    for error in data.get("errors", []):
        name = Path(str(error.get("filename", "")))
        path = name if name.is_absolute() else root / name
        try:
            rel = relative(root, path)
        except ValueError:
            continue
        issues.append(skipped_issue(rel, _error_reason(str(error.get("reason", "")))))
    return issues


def partition(files: Sequence[Path], workers: int) -> list[list[Path]]:
    """Split ``files`` into at most ``workers`` groups of similar total size (largest first)."""
    count = max(workers, 1)
    sizes = [0] * count
    groups: list[list[Path]] = [[] for _ in range(count)]
    for size, path in sorted(((_size(p), p) for p in files), key=lambda s: (-s[0], s[1])):
        lightest = sizes.index(min(sizes))
        groups[lightest].append(path)
        sizes[lightest] += size
    return [sorted(group) for group in groups if group]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # vanished since the walk: bandit reports it as an error
        return 0


def workers_for(files: Sequence[Path]) -> int:
    """One bandit process per ``BYTES_PER_WORKER`` of source, up to the CPU count (max 4)."""
    total = sum(_size(p) for p in files)
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS, total // BYTES_PER_WORKER))


# What a project's .bandit may say about the policy, as bandit's own options. The rest
# of it (targets, recursive, format, output, verbosity) is about how bandit runs, which
# devskyy decides: an ``output = report.json`` must not send the results elsewhere.
_INI_OPTIONS = {"skips": "-s", "tests": "-t", "exclude": "-x", "configfile": "-c"}


def ini_args(root: Path, name: str) -> list[str]:
    """The policy options of the project's ``.bandit`` (``[bandit]`` section)."""
    parser = configparser.ConfigParser()
    try:
        parser.read(root / name, encoding="utf-8")
        section = dict(parser.items("bandit"))
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ToolError(f"{name}: not a bandit INI file: {exc}") from None
    args: list[str] = []
    for key, flag in _INI_OPTIONS.items():
        value = section.get(key, "").strip()
        if value:
            args += [flag, str(root / value) if key == "configfile" else value]
    return args


def policy_args(root: Path, skip: Sequence[str], config: str | None) -> list[str]:
    """The project's configuration (its ``.bandit`` options, or ``-c pyproject.toml``),
    or devskyy's skips."""
    if config == ".bandit":
        return ini_args(root, config)
    if config is not None:
        return ["-c", str(root / config)]
    return ["-s", ",".join(skip)] if skip else []


async def _one(
    root: Path, files: Sequence[Path], skip: Sequence[str], config: str | None, config_root: Path
) -> list[Issue]:
    issues: list[Issue] = []
    for part in chunks([str(f) for f in files]):
        # -I: isolated mode, so the scanned tree (the working directory) is never on
        # bandit's sys.path; a project's own ``yaml.py`` must not be imported by bandit.
        argv = [python(), "-I", "-m", "bandit", "-f", "json", "-q", "--exit-zero"]
        argv += policy_args(config_root, skip, config)
        done = await run([*argv, "--", *part], cwd=root)
        if done.returncode != 0 or not done.stdout.strip():
            raise tool_error("bandit", done)
        issues += parse_output(root, done.stdout)
    return issues


async def scan(
    root: Path,
    files: Sequence[Path],
    skip: Sequence[str] = DEFAULT_SKIP,
    config: str | None = None,
    config_root: Path | None = None,
) -> list[Issue]:
    """bandit on ``files``; every finding, whatever its severity or confidence.

    bandit checks each file on its own, so a large tree is split by size across a few
    bandit processes that run at once (one per CPU at most); a small one uses one.
    """
    groups = partition(files, workers_for(files))
    base = config_root or root
    results = await gather_in_order([_one(root, group, skip, config, base) for group in groups])
    return [issue for part in results for issue in part]
