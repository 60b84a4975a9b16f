"""bandit as the security scanner: its findings with severity and confidence.

bandit runs as ``python -m bandit -f json`` in its own process (so it works on another
core while ruff runs), from the scanned root, on the exact file list the walker chose.
The project's own configuration applies when it has one (the ``skips``, ``tests``,
``exclude`` and ``configfile`` of its ``.bandit``, or ``[tool.bandit]`` in
``pyproject.toml`` via ``-c``);
otherwise devskyy's ``banditSkip``. ``# nosec`` comments are always honoured. A file
bandit could not read or parse is a ``skipped`` finding. Its hard-coded password
findings quote the password; devskyy replaces the value before the message goes anywhere.

bandit judges each file on its own, so its findings for a file are reused, within one
process, while the file's bytes and the policy are the same (``_CACHE``): the rescan
after a fix starts bandit only for the files the fixer changed, and not at all when it
changed none. The key holds the file's path relative to the root and its content hash,
the policy's arguments and the content of each configuration file they name, and the
root itself whenever that policy may exclude paths (a project's own configuration).
"""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import re
from collections.abc import Sequence
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from devskyy.agents.codecheck.files import oserror_reason, relative, sha256_bytes
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
    bandit processes that run at once (one per CPU at most); a small one uses one. A
    file whose bytes and policy bandit has already judged is not given to it again.
    """
    base = config_root or root
    policy = _policy_key(root, base, skip, config)
    keys = await asyncio.to_thread(_file_keys, root, files)
    named = [k[0] for k in keys.values() if k]
    if len(set(named)) != len(named):  # two paths of one file (links): no reuse
        keys = dict.fromkeys(files)
    cached: dict[Path, tuple[Issue, ...]] = {}
    for path, key in keys.items():
        if key is not None and (policy, key) in _CACHE:
            cached[path] = _CACHE[(policy, key)]
    todo = [path for path in files if path not in cached]
    found: dict[str, list[Issue]] = {}
    if todo:
        groups = partition(todo, workers_for(todo))
        results = await gather_in_order([_one(root, g, skip, config, base) for g in groups])
        for issue in (issue for part in results for issue in part):
            found.setdefault(issue.file, []).append(issue)
        after = await asyncio.to_thread(_file_keys, root, todo)
        for path in todo:
            key = keys[path]
            if key is not None and after[path] == key:  # unchanged while bandit read it
                _remember((policy, key), found.get(key[0], []))
    out = [issue for path in files for issue in cached.get(path, ())]
    return out + [issue for part in found.values() for issue in part]


# (policy key, (relative path, sha256)) -> bandit's findings for that file. Bounded: the
# oldest entries go first; a watch daemon scanning many trees keeps the recent ones.
_CACHE: dict[tuple[tuple[str, ...], tuple[str, str]], tuple[Issue, ...]] = {}
CACHE_ENTRIES = 20_000


def forget() -> None:
    """Drop every reused finding: the next scan runs bandit on every file, as a new
    process does (``benchmarks/bench_scan.py`` times each scan so)."""
    _CACHE.clear()


def _remember(key: tuple[tuple[str, ...], tuple[str, str]], issues: Sequence[Issue]) -> None:
    _CACHE.pop(key, None)
    _CACHE[key] = tuple(issues)
    while len(_CACHE) > CACHE_ENTRIES:
        del _CACHE[next(iter(_CACHE))]


def _file_keys(root: Path, files: Sequence[Path]) -> dict[Path, tuple[str, str] | None]:
    """``(relative path, sha256)`` of each file; None when it cannot be read (bandit is
    asked, and reports it)."""
    keys: dict[Path, tuple[str, str] | None] = {}
    for path in files:
        try:
            keys[path] = (relative(root, path), sha256_bytes(path.read_bytes()))
        except (OSError, ValueError):
            keys[path] = None
    return keys


def _policy_key(root: Path, base: Path, skip: Sequence[str], config: str | None) -> tuple[str, ...]:
    """What else bandit's verdict on a file depends on: the interpreter, bandit's version,
    the policy's arguments, the bytes of each file they name, and, when the policy is the
    project's own (it may exclude paths), the root."""
    args = policy_args(base, skip, config)
    key = [python(), bandit_version(), *args]
    for arg in args:
        path = Path(arg)
        if path.is_absolute():
            key.append(_content_hash(path))
    if config is not None:
        key += [_content_hash(base / config), str(root.resolve())]
    return tuple(key)


def _content_hash(path: Path) -> str:
    try:
        return sha256_bytes(path.read_bytes())
    except OSError as exc:  # bandit itself reports it when it runs
        return f"unreadable: {exc.strerror}"
