"""Confine the paths of API requests to the configured workspace roots (pure path checks).

Which inputs are paths is declared by each agent's input model with the path types of
``devskyy.model.paths`` (``WorkspaceFolder``, ``WorkspaceFiles``), never guessed from
parameter names. ``confine_inputs`` confines the declared inputs of a request; a folder
input the request omits gets the first workspace root, so no request ever reaches the
server's working directory by default. ``workflow_path_params`` finds the workflow
parameters that flow into a declared path input of a step (``${{ params.X }}``).

A path is resolved against the first root when relative, with every existing symlink
followed, and must then lie inside one resolved root. The check of "inside" comes before
the check of existence, so an error never tells whether a path outside the workspace
exists; errors name the path as the client gave it, never a server path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from devskyy.model.paths import PathField, PathKind


class OutsideWorkspace(ValueError):
    """The path is not inside any workspace root (the message says why)."""


class PathNotFound(ValueError):
    """The path is inside a workspace root but does not exist (404 ``not_found``).

    Not an ``OutsideWorkspace``: a typo in a path inside the workspace must not read as
    a permission problem. It is raised only after the "inside" check, so it never tells
    anything about paths outside the workspace.
    """


def _inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def _resolved(roots: Sequence[Path]) -> list[Path]:
    """The roots with every symlink followed; refused when there are none."""
    if not roots:
        raise OutsideWorkspace("no workspace roots are configured")
    return [r.resolve() for r in roots]


def _confine_in(path: str, resolved_roots: Sequence[Path], base: Path | None) -> Path:
    """``confine`` against roots already resolved (by ``_resolved``, once per request)."""
    if "\x00" in path:
        raise OutsideWorkspace("path contains a NUL byte")
    raw = Path(path)
    candidate = raw if raw.is_absolute() else (base or resolved_roots[0]) / raw
    try:
        # Not strict: a missing part does not stop the resolution, so a dangling link out
        # of the workspace is "outside" exactly like a link to a path that exists.
        real = candidate.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise OutsideWorkspace(f"path {path!r} cannot be resolved in the workspace") from None
    if not any(_inside(root, real) for root in resolved_roots):
        via = (
            " (through '..' or a symbolic link)"
            if candidate.absolute() != real or ".." in raw.parts
            else ""
        )
        raise OutsideWorkspace(f"path {path!r} is outside the workspace roots{via}")
    if not real.exists():
        raise PathNotFound(f"path {path!r} does not exist in the workspace")
    return real


def confine(path: str, roots: Sequence[Path], base: Path | None = None) -> Path:
    """The resolved path inside a root; ``OutsideWorkspace`` otherwise.

    A relative ``path`` is taken from ``base`` (a folder already confined), else from the
    first root; errors name ``path`` as given.
    """
    return _confine_in(path, _resolved(roots), base)


def confine_files(files: Sequence[str], roots: Sequence[Path]) -> list[str]:
    """Each target file confined (same rules); returns the resolved paths as text.

    The roots are resolved once for all the files (each resolution is a system call
    per path component).
    """
    if not files:
        return []
    resolved_roots = _resolved(roots)
    return [str(_confine_in(f, resolved_roots, None)) for f in files]


def _given(params: Mapping[str, Any], names: Iterable[str]) -> str | None:
    """The first of ``names`` present in ``params`` (a field may come by name or alias)."""
    return next((n for n in names if n in params), None)


def _spellings(field: str, declared: Mapping[str, PathField]) -> list[str]:
    """Every name ``declared`` lists for the input ``field`` (its name and its alias)."""
    return [n for n, f in declared.items() if f.field == field] or [field]


def confine_inputs(
    params: Mapping[str, Any], roots: Sequence[Path], declared: Mapping[str, PathField]
) -> dict[str, Any]:
    """``params`` with every declared path input confined inside a root.

    A folder input that ``params`` omits (or sets to null) is set to the first root; a
    files input is confined file by file, relative to its folder input unless absolute.
    """
    if not roots:
        raise OutsideWorkspace("no workspace roots are configured")
    # Resolved once for every path of the request (and not at all without path inputs).
    resolved_roots = _resolved(roots) if declared else []
    out = dict(params)
    for field in sorted({f.field for f in declared.values() if f.kind is PathKind.FOLDER}):
        key = _given(out, _spellings(field, declared)) or field
        value = out.get(key)
        if value is None:
            root = resolved_roots[0]
            if not root.is_dir():  # else the agent's error would name the server's folder
                raise PathNotFound(
                    "the server's workspace folder does not exist (serve --workspace)"
                )
            out[key] = str(root)
        elif isinstance(value, str):
            out[key] = str(_confine_in(value, resolved_roots, None))
        else:
            raise OutsideWorkspace(f"parameter {key!r} must be a path string")
    for name, entry in declared.items():
        if entry.kind is not PathKind.FILES or out.get(name) is None:
            continue
        files = out[name]
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise OutsideWorkspace(f"parameter {name!r} must be a list of path strings")
        base_key = _given(out, _spellings(entry.relative_to or "", declared))
        base = Path(out[base_key]) if base_key is not None else resolved_roots[0]
        out[name] = [str(_confine_in(f, resolved_roots, base)) for f in files]
    return out


_PARAM = re.compile(r"^\$\{\{\s*params\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}$")


def param_of(value: Any) -> str | None:
    """The parameter a step input is, whole (``${{ params.X }}``), or None."""
    match = _PARAM.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def workflow_path_params(
    steps: Iterable[tuple[Mapping[str, Any], Mapping[str, PathField]]],
) -> dict[str, PathField]:
    """The workflow parameters that are paths.

    ``steps`` gives, per step, its ``input`` and the path inputs its agent declares. A
    parameter passed unchanged (``${{ params.X }}``) into a declared path input is a path
    of the same kind; a files input's folder becomes the parameter feeding the step's
    folder input (if one does).
    """
    found: dict[str, PathField] = {}
    for inputs, declared in steps:
        for name, field in declared.items():
            param = param_of(inputs.get(name))
            if param is None or field.kind is PathKind.COMMAND:
                continue  # a command input is refused, not confined (devskyy.api.confine)
            relative_to = None
            if field.relative_to is not None:
                feeding = _given(inputs, _spellings(field.relative_to, declared))
                relative_to = param_of(inputs.get(feeding)) if feeding else None
            found[param] = PathField(param, field.kind, relative_to)
    return found
