"""``ApiSettings``: how the HTTP layer is configured (no globals; given to ``create_app``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MAX_BODY = 1_048_576
"""Bytes: a request body larger than this is refused with 413."""


def _default_workspaces() -> tuple[Path, ...]:
    return (Path.cwd() / "workspace",)


@dataclass(frozen=True)
class ApiSettings:
    """Workspace roots, body cap, the default rate limit and how long ``?wait=true`` waits.

    ``workspace_roots``: the folders scanner and fixer requests may name (default: the
    server's ``./workspace``); ``rate_limit``: requests per ``rate_window`` seconds for a
    principal without an Agent manifest ``rateLimit`` (None: the security manager's
    default, 100 per 60 s); ``wait_timeout``: seconds a waiting request waits before it
    answers 202 with the run id anyway; ``block_sources``: count authentication
    failures per client address (after too many, that address is blocked, so guessing
    keys from one place stops working), else per presented string.
    ``allowed_commands``: the command lines (``serve --allow-command``) a request may give
    a command input, matched word for word (``devskyy.core.allowed_commands``); empty:
    none (403 ``command_not_allowed``).
    """

    workspace_roots: tuple[Path, ...] = field(default_factory=_default_workspaces)
    max_body_bytes: int = DEFAULT_MAX_BODY
    rate_limit: int | None = None
    rate_window: float = 60.0
    wait_timeout: float = 300.0
    history_limit: int = 100
    block_sources: bool = True
    allowed_commands: tuple[str, ...] = ()
