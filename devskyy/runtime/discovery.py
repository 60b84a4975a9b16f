"""Agent discovery the GitOps way: find agent classes in source, write Agent manifests.

``discover(path)`` reads every ``*_v2.py`` and ``*_agent.py`` file under ``path`` (hidden
folders, ``__pycache__`` and virtualenvs skipped) and parses it with ``ast``; nothing
is imported or executed. A class is an agent when one of its bases is named
``BaseAgent`` (``BaseAgent`` or ``something.BaseAgent``) or is an agent class found in
the scanned files; it is skipped when neither it nor a scanned ancestor defines
``execute_core_function`` (an abstract base).

For each agent class, the manifest gets:

* ``metadata.name``: the class name in snake_case without a trailing ``_v<N>`` and then
  ``_agent`` (``ScannerAgentV2`` → ``scanner``, ``InventoryAgent`` → ``inventory``);
* ``spec.module``: the file's import path, found by walking up the folders that hold an
  ``__init__.py`` (``agent/modules/scanner_v2.py`` → ``agent.modules.scanner_v2``), then
  ``:ClassName``;
* ``spec.version``: the literal ``version=`` passed to ``super().__init__`` if any;
* ``spec.description``: the first line of the class docstring;
* ``spec.capabilities``, ``spec.dependencies``, ``spec.priority``: the class attributes of
  those names when they are literals (the class's own or a scanned ancestor's).

``write_manifests`` writes one ``<name>.yaml`` per agent and refuses (writing nothing)
when a target exists, unless ``force``. Writes go through ``devskyy.adapters.safe_files``:
a target, or a folder of the working tree on its way, that is a symbolic link is refused.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devskyy.adapters import safe_files
from devskyy.errors import DevskyyError
from devskyy.model.manifests import API_VERSION, NAME_PATTERN, Agent, Priority
from devskyy.model.resources import document

PATTERNS = ("*_v2.py", "*_agent.py")
SKIP_DIRS = {"__pycache__", "node_modules", "venv", "site-packages"}
_NAME = re.compile(NAME_PATTERN)


class DiscoveryError(DevskyyError):
    """Discovery cannot proceed (bad path, existing files without ``--force``)."""


@dataclass
class _Class:
    name: str
    file: Path
    module: str
    bases: list[str]
    node: ast.ClassDef
    defines_core: bool
    literals: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Found:
    """One discovered agent class and the manifest written for it."""

    file: Path
    class_name: str
    manifest: Agent


@dataclass(frozen=True)
class Discovery:
    """Everything ``discover`` found, and what it could not use (with reasons)."""

    found: tuple[Found, ...]
    skipped: tuple[str, ...]


def source_files(root: Path) -> Iterator[Path]:
    """The candidate files under ``root`` (or ``root`` itself), sorted."""
    if root.is_file():
        yield root
        return
    seen: set[Path] = set()
    for pattern in PATTERNS:
        for path in root.rglob(pattern):
            parts = path.relative_to(root).parts[:-1]
            if any(p.startswith(".") or p in SKIP_DIRS for p in parts):
                continue
            seen.add(path)
    yield from sorted(seen)


def module_name(path: Path) -> str:
    """The dotted import path of a source file, from the packages that contain it."""
    parts = [path.stem]
    folder = path.parent.resolve()
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        parts.append(folder.name)
        folder = folder.parent
    return ".".join(reversed(parts))


def agent_name(class_name: str) -> str:
    """``ScannerAgentV2`` → ``scanner`` (see the module docstring)."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", class_name)
    snake = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", snake).lower().strip("_")
    snake = re.sub(r"_?v\d+$", "", snake)
    stripped = re.sub(r"_?agent$", "", snake)
    name = stripped or snake
    name = re.sub(r"[^a-z0-9_-]", "_", name)
    return name if name[:1].isalpha() else f"agent_{name}"


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _base_name(node.value)
    return ""


def _literals(node: ast.ClassDef) -> dict[str, Any]:
    """Literal class attributes, and the ``version=`` given to ``super().__init__``."""
    out: dict[str, Any] = {}
    for stmt in node.body:
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        if isinstance(target, ast.Name) and value is not None:
            try:
                out[target.id] = ast.literal_eval(value)
            except ValueError:
                continue
        if isinstance(stmt, ast.AsyncFunctionDef | ast.FunctionDef) and stmt.name == "__init__":
            for call in ast.walk(stmt):
                if isinstance(call, ast.Call) and _base_name(call.func) == "__init__":
                    for kw in call.keywords:
                        if kw.arg == "version" and isinstance(kw.value, ast.Constant):
                            out.setdefault("__version__", kw.value.value)
    return out


def _classes(path: Path, skipped: list[str]) -> list[_Class]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, OSError) as exc:
        where = f":{exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
        skipped.append(f"{path}{where}: cannot parse: {type(exc).__name__}")
        return []
    module = module_name(path)
    out = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            defines = any(
                isinstance(s, ast.AsyncFunctionDef | ast.FunctionDef)
                and s.name == "execute_core_function"
                for s in node.body
            )
            out.append(
                _Class(
                    node.name,
                    path,
                    module,
                    [_base_name(b) for b in node.bases],
                    node,
                    defines,
                    _literals(node),
                )
            )
    return out


def _ancestry(cls: _Class, by_name: dict[str, _Class]) -> list[_Class]:
    """The class and its scanned ancestors, nearest first."""
    chain, queue, seen = [], [cls], set()
    while queue:
        current = queue.pop(0)
        if current.name in seen:
            continue
        seen.add(current.name)
        chain.append(current)
        queue.extend(by_name[b] for b in current.bases if b in by_name)
    return chain


def _inherited(chain: list[_Class], key: str) -> Any:
    for cls in chain:
        if key in cls.literals:
            return cls.literals[key]
    return None


def _manifest(cls: _Class, chain: list[_Class], skipped: list[str]) -> Agent | None:
    spec: dict[str, Any] = {"module": f"{cls.module}:{cls.name}"}
    version = _inherited(chain, "__version__")
    if isinstance(version, str) and version:
        spec["version"] = version
    doc = ast.get_docstring(cls.node)
    if doc:
        spec["description"] = doc.strip().splitlines()[0]
    for key in ("capabilities", "dependencies"):
        value = _inherited(chain, key)
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            good = [v for v in value if _NAME.match(v)]
            bad = [v for v in value if not _NAME.match(v)]
            if bad:
                skipped.append(f"{cls.file}: {cls.name}: invalid {key} {bad} left out")
            if good:
                spec[key] = list(dict.fromkeys(good))
    priority = _inherited(chain, "priority")
    if isinstance(priority, str) and priority.lower() in {p.value for p in Priority}:
        spec["priority"] = priority.lower()
    data = {
        "apiVersion": API_VERSION,
        "kind": "Agent",
        "metadata": {"name": agent_name(cls.name)},
        "spec": spec,
    }
    try:
        return Agent.model_validate(data)
    except ValueError as exc:
        skipped.append(f"{cls.file}: {cls.name}: {exc}")
        return None


def discover(root: Path) -> Discovery:
    """Find the agent classes under ``root`` (see the module docstring)."""
    if not root.exists():
        raise DiscoveryError(f"{root}: no such file or directory")
    skipped: list[str] = []
    classes = [c for path in source_files(root) for c in _classes(path, skipped)]
    by_name = {c.name: c for c in classes}
    agents: set[str] = set()
    changed = True
    while changed:
        changed = False
        for cls in classes:
            if cls.name not in agents and any(b == "BaseAgent" or b in agents for b in cls.bases):
                agents.add(cls.name)
                changed = True
    found: list[Found] = []
    names: dict[str, str] = {}
    for cls in classes:
        if cls.name not in agents or cls.name == "BaseAgent":
            continue
        chain = _ancestry(cls, by_name)
        if not any(c.defines_core for c in chain):
            skipped.append(f"{cls.file}: {cls.name}: abstract (no execute_core_function)")
            continue
        manifest = _manifest(cls, chain, skipped)
        if manifest is None:
            continue
        if manifest.name in names:
            skipped.append(
                f"{cls.file}: {cls.name}: name {manifest.name!r} already taken by "
                f"{names[manifest.name]}"
            )
            continue
        names[manifest.name] = f"{cls.module}:{cls.name}"
        found.append(Found(cls.file, cls.name, manifest))
    return Discovery(tuple(found), tuple(skipped))


def render(manifest: Agent) -> str:
    """The YAML of a manifest, without defaults that were not set."""
    doc = document(manifest)
    spec = manifest.spec.model_dump(mode="json", by_alias=True, exclude_unset=True)
    doc["spec"] = spec
    doc["metadata"] = {"name": manifest.name}
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def write_manifests(found: tuple[Found, ...], out_dir: Path, *, force: bool = False) -> list[Path]:
    """Write one file per agent; nothing is written when a target exists without ``force``,
    or when a target or a folder on its way is a symbolic link (``safe_files`` rules)."""
    targets = [(out_dir / f"{f.manifest.name}.yaml", f) for f in found]
    existing = [str(path) for path, _ in targets if os.path.lexists(path)]
    if existing and not force:
        raise DiscoveryError(
            f"refusing to overwrite {', '.join(existing)} (use --force to replace)"
        )
    root, below = safe_files.anchor(out_dir)
    for path, _ in targets:
        try:
            safe_files.check_writable(root, below / path.name)
        except safe_files.UnsafeWrite as exc:
            raise DiscoveryError(f"refused to write {path}: {exc.reason}") from None
    for path, item in targets:
        try:
            safe_files.write_text(root, below / path.name, render(item.manifest), make_parents=True)
        except safe_files.UnsafeWrite as exc:
            raise DiscoveryError(f"refused to write {path}: {exc.reason}") from None
    return [path for path, _ in targets]
