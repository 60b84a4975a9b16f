"""Whose rules a scan judges by: the scanned project's own configuration, or devskyy's.

A project that configures ruff (``.ruff.toml``, ``ruff.toml``, or a ``pyproject.toml``
with a ``[tool.ruff]`` table, in its root folder: ruff's own order of precedence) is
judged by that configuration: rule selection, ignores, per-file ignores, line length,
isort and format settings, target version, exclusions. ruff then runs from the root
without ``--isolated``, exactly as the project's own ``ruff check`` would. Only a root
without any ruff configuration gets devskyy's policy from the agent's manifest
(``ruffSelect``, ``lineLength``, ``ruffTargetVersion``, run ``--isolated`` so that no
configuration above the root leaks in).

bandit likewise reads the project's ``.bandit`` (its INI policy options: skips, tests,
exclude, configfile) or the ``[tool.bandit]`` table of its ``pyproject.toml`` (passed
with ``-c``); without either,
devskyy's ``banditSkip`` applies. ``# nosec`` comments are honoured in both cases.

Every report names the policy used and the file it came from (``policy_record``), and
records the sha256 of each configuration file so that the fixer can refuse to act when a
configuration changed since the scan.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from devskyy.agents.codecheck.files import sha256_bytes

RUFF_FILES = (".ruff.toml", "ruff.toml", "pyproject.toml")
PROJECT = "project"
DEVSKYY = "devskyy"


class PolicyError(ValueError):
    """The project's configuration cannot be read (reported, never guessed around)."""


def _pyproject_tool(root: Path, tool: str) -> bool:
    path = root / "pyproject.toml"
    if not path.is_file():
        return False
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from None
    tools = data.get("tool")
    return isinstance(tools, dict) and isinstance(tools.get(tool), dict)


def ruff_config(root: Path) -> str | None:
    """The root's own ruff configuration file (relative name), or None."""
    for name in RUFF_FILES:
        path = root / name
        if not path.is_file():
            continue
        if name != "pyproject.toml" or _pyproject_tool(root, "ruff"):
            return name
    return None


def bandit_config(root: Path) -> str | None:
    """The root's own bandit configuration (``.bandit`` or ``pyproject.toml``), or None."""
    if (root / ".bandit").is_file():
        return ".bandit"
    if _pyproject_tool(root, "bandit"):
        return "pyproject.toml"
    return None


def config_hashes(root: Path, names: list[str | None]) -> dict[str, str]:
    """sha256 of each named configuration file (so a fixer can tell it changed)."""
    return {n: sha256_bytes((root / n).read_bytes()) for n in sorted({n for n in names if n})}


def _source(config: str | None, keys: str, agent: str) -> dict[str, Any]:
    if config:
        return {"source": PROJECT, "file": config}
    return {"source": DEVSKYY, "file": f"spec.config of agent {agent} ({keys})"}


def policy_record(ruff_file: str | None, bandit_file: str | None, agent: str) -> dict[str, Any]:
    """Which policy each analyzer used, and from which file."""
    return {
        "ruff": _source(ruff_file, "ruffSelect, lineLength, ruffTargetVersion", agent),
        "bandit": _source(bandit_file, "banditSkip", agent),
    }
