"""Which git commit a manifest tree comes from, and whether it has uncommitted edits.

Revisions record this so that ``history`` can say what was applied. It asks the
``git`` program and never fails: outside a work tree, without git, or on any git
error the answer is ``None``. "Dirty" means the applied path itself (not the whole
repository) has staged, unstaged or untracked changes, since only those files shape
the revision. ``GIT_OPTIONAL_LOCKS=0`` keeps ``git status`` from taking the index lock
of a repository that people are committing to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_TIMEOUT = 10.0


@dataclass(frozen=True)
class GitInfo:
    """The commit at HEAD (None in a repository without commits) and the dirty flag."""

    commit: str | None
    dirty: bool


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    exe = shutil.which("git")
    if exe is None:
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env["LC_ALL"] = "C"
    try:
        return subprocess.run(  # noqa: S603 - fixed argv, no shell
            [exe, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def git_info(path: Path) -> GitInfo | None:
    """The commit and dirty flag of the work tree holding ``path``; None outside git."""
    try:
        target = path.resolve()
        cwd = target if target.is_dir() else target.parent
        if not cwd.is_dir():
            return None
    except OSError:
        return None
    inside = _git(cwd, "rev-parse", "--is-inside-work-tree")
    if inside is None or inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    head = _git(cwd, "rev-parse", "--verify", "--quiet", "HEAD")
    commit = head.stdout.strip() if head is not None and head.returncode == 0 else None
    status = _git(cwd, "status", "--porcelain", "--untracked-files=normal", "--", str(target))
    if status is None or status.returncode != 0:
        return None
    return GitInfo(commit=commit or None, dirty=bool(status.stdout.strip()))
