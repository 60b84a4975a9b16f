"""Where the code agents may work: the ``allowed_roots`` guard shared by all three.

An agent reachable over the HTTP API must not read or rewrite arbitrary folders of the
server (the original fixer rewrote everything under its working directory). Each code
agent's config lists ``allowedRoots`` (default: the process's working directory); a
``target_path`` must resolve, symlinks included, inside one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from devskyy.agents.codecheck.files import is_inside

CODE_AGENTS = ("scanner", "fixer", "security", "verifier")


def check_root(
    target_path: str | None, allowed_roots: Sequence[str], base: Path, agent: str | None = None
) -> Path:
    """The resolved ``target_path``; ``ValueError`` with a readable reason otherwise.

    The refusal of a folder outside the roots names the manifest field to change,
    ``spec.config.allowedRoots``, in each code agent's manifest: the code agents of one
    workflow must all be allowed the folder.
    """
    if not target_path:
        raise ValueError("target_path is required")
    root = (base / target_path).resolve()
    if not root.is_dir():
        raise ValueError(f"target_path {target_path!r} is not a folder")
    allowed = [(base / a).resolve() for a in allowed_roots]
    if not any(is_inside(a, root) for a in allowed):
        shown = ", ".join(str(a) for a in allowed) or "(none)"
        who = f" of agent {agent}" if agent else ""
        raise ValueError(
            f"target_path {root} is outside the allowed roots{who}: {shown}; to allow it,"
            f" add {root} (or a folder above it) to spec.config.allowedRoots in the"
            f" manifests of the agents {', '.join(CODE_AGENTS)}"
            " (manifests/agents/<name>.yaml), then run devskyy apply"
        )
    return root
