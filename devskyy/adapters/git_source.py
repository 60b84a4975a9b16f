"""Pull mode: keep a local checkout of a branch, fast-forward only.

``GitSource.sync()`` clones on first use, then fetches the branch and fast-forwards
the checkout; it returns the commit now checked out and whether it moved. A branch
that was rewritten (not a fast-forward) is refused rather than silently reset, the
way Flux refuses a non-fast-forward by default. ``url`` may be any git URL or a local
repository path. Credentials belong in git's own configuration, never in arguments.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devskyy.errors import StateError


class GitError(StateError):
    """A git command failed; the message carries git's own words."""


@dataclass(frozen=True)
class SyncResult:
    """The commit checked out after a sync, and whether it changed."""

    commit: str
    changed: bool


def _git(*args: str, cwd: Path | None = None, timeout: float = 120.0) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(  # noqa: S603 - fixed executable, arguments are ours
            ["git", *args],  # noqa: S607
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git {args[0]}: {exc}") from None
    if done.returncode != 0:
        raise GitError(f"git {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


class GitSource:
    """A branch of a repository, mirrored into ``checkout``."""

    def __init__(self, url: str, branch: str, checkout: Path) -> None:
        self.url = url
        self.branch = branch
        self.checkout = checkout

    def head(self) -> str:
        return _git("rev-parse", "HEAD", cwd=self.checkout)

    def sync(self) -> SyncResult:
        """Clone or fast-forward; raises ``GitError`` on failure or a rewritten branch."""
        if not (self.checkout / ".git").exists():
            self.checkout.parent.mkdir(parents=True, exist_ok=True)
            _git(
                "clone",
                "--quiet",
                "--branch",
                self.branch,
                "--single-branch",
                self.url,
                str(self.checkout),
            )
            return SyncResult(self.head(), changed=True)
        before = self.head()
        _git("fetch", "--quiet", "origin", self.branch, cwd=self.checkout)
        try:
            _git("merge", "--ff-only", "--quiet", "FETCH_HEAD", cwd=self.checkout)
        except GitError as exc:
            raise GitError(
                f"branch {self.branch!r} of {self.url} cannot be fast-forwarded "
                f"(was it rewritten?): {exc}"
            ) from None
        after = self.head()
        return SyncResult(after, changed=after != before)
