"""Desired state from files: read a manifest tree, load it strictly, validate the set.

``load_desired(path)`` is what ``validate``, ``plan``, ``apply`` and the watch daemon
call: it returns the ``ResourceSet`` of a valid tree, or raises ``ManifestError`` with
every problem of the run (unreadable and oversized files, YAML, schema, references,
cycles, module prefixes, expressions), in printing order.

Module prefixes: ``devskyy.agents`` always, plus the comma-separated prefixes in
``DEVSKYY_ALLOWED_MODULES``, plus the modules registered in the ``devskyy.agents``
entry-point group (docs/manifests.md). Modules are imported only with ``check_agents``
(``validate --check-agents``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devskyy.adapters.manifest_files import (
    DEFAULT_MAX_BYTES,
    DiskManifestFiles,
    ManifestFiles,
    ManifestPathError,
)
from devskyy.core.validation import Validated, validate_set
from devskyy.core.yaml_strict import LoadResult, load_documents
from devskyy.errors import ManifestError
from devskyy.model.problems import FILE, Problem
from devskyy.model.resources import KIND_ORDER, ResourceSet

ALLOWED_MODULES_ENV = "DEVSKYY_ALLOWED_MODULES"
ENTRY_POINT_GROUP = "devskyy.agents"

_PLURALS = {
    "Role": ("role", "roles"),
    "RoleBinding": ("role binding", "role bindings"),
    "Agent": ("agent", "agents"),
    "Workflow": ("workflow", "workflows"),
}


def allowed_prefixes_from_env() -> list[str]:
    """The prefixes in ``DEVSKYY_ALLOWED_MODULES`` (comma-separated), blanks dropped."""
    raw = os.environ.get(ALLOWED_MODULES_ENV, "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def entry_point_modules() -> list[str]:
    """Module names registered in the ``devskyy.agents`` entry-point group."""
    from importlib.metadata import entry_points  # noqa: PLC0415 - only when needed

    return sorted({ep.module for ep in entry_points(group=ENTRY_POINT_GROUP)})


def default_prefixes() -> list[str]:
    """Allowed prefixes when the caller gives none: the setting plus entry points."""
    return [*allowed_prefixes_from_env(), *entry_point_modules()]


def validate_tree(
    path: Path | str,
    allowed_prefixes: Sequence[str] | None = None,
    *,
    files: ManifestFiles | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    check_agents: bool = False,
) -> Validated:
    """Read, load and validate every manifest below ``path``; never raises for bad input.

    A missing path or a tree without manifests is reported as one problem on ``path``.
    ``check_agents`` also imports each allowed agent's class and checks its
    ``spec.config`` (``devskyy.runtime.agent_check``); otherwise nothing is imported.
    """
    source = files or DiskManifestFiles()
    root = str(path)
    try:
        found = source.read_tree(root, max_bytes)
    except ManifestPathError as exc:
        message = str(exc).removeprefix(f"{root}: ")
        return Validated(ResourceSet(), (Problem(root, 1, 1, FILE, message),))
    if not found:
        message = "no manifests found (*.yaml or *.yml files)"
        return Validated(ResourceSet(), (Problem(root, 1, 1, FILE, message),))
    unread: list[Problem] = []
    loaded: list[LoadResult] = []
    for item in found:
        if item.data is None:
            unread.append(Problem(item.name, 1, 1, FILE, item.error or "cannot read file"))
            continue
        loaded.append(load_documents(item.data, item.name))
    if not unread and all(
        not result.problems and all(doc.data is None for doc in result.documents)
        for result in loaded
    ):
        # Like a tree without files: never "valid", so that apply --prune of a wrong
        # path (an empty or comment-only file) cannot delete every live resource.
        message = f"no resources in {root}: every manifest file is empty or only comments"
        return Validated(ResourceSet(), (Problem(found[0].name, 1, 1, FILE, message),))
    prefixes = default_prefixes() if allowed_prefixes is None else list(allowed_prefixes)
    if not check_agents:
        return validate_set(loaded, prefixes, unread)
    from devskyy.runtime.agent_check import check_agent  # noqa: PLC0415 - imports agents

    return validate_set(loaded, prefixes, unread, check_agent)


def load_desired(
    path: Path | str,
    allowed_prefixes: Sequence[str] | None = None,
    *,
    files: ManifestFiles | None = None,
) -> ResourceSet:
    """The desired state below ``path``; raises ``ManifestError`` with every problem.

    ``allowed_prefixes`` are module prefixes allowed besides ``devskyy.agents``; None
    reads ``DEVSKYY_ALLOWED_MODULES`` and the ``devskyy.agents`` entry points.
    """
    result = validate_tree(path, allowed_prefixes, files=files)
    if result.problems:
        raise ManifestError(list(result.problems))
    return result.resources


@dataclass(frozen=True)
class Summary:
    """How many resources of each kind a valid tree holds."""

    counts: dict[str, int]

    def __str__(self) -> str:
        parts = []
        for kind in KIND_ORDER:
            n = self.counts.get(kind, 0)
            singular, plural = _PLURALS[kind]
            parts.append(f"{n} {singular if n == 1 else plural}")
        return ", ".join(parts)


def summarize(resources: ResourceSet) -> Summary:
    """Counts per kind, in ``KIND_ORDER`` (roles, role bindings, agents, workflows)."""
    return Summary({kind: len(resources.by_kind(kind)) for kind in KIND_ORDER})
