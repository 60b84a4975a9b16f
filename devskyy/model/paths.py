"""Which agent inputs are paths: a type marker that the API's workspace confinement reads.

An agent's input model (``BaseAgent.input_model``) declares a field a path by its type,
not by its name:

- ``WorkspaceFolder``: a folder the agent works in. Over the HTTP API it must lie inside
  a workspace root, and a request that omits it gets the first workspace root, never the
  server's working directory.
- ``WorkspaceFiles``: a list of files, each relative to the folder input named by
  ``relative_to`` (or absolute); each must lie inside a workspace root.
- ``ServerCommand``: a command line the agent runs on the server (``verify_command``).
  The HTTP API refuses a request that sets one: whoever may start a workflow would
  otherwise run any program as the server's user (read the store, mint keys).

``path_inputs(model)`` lists a model's path fields (by field name and by alias), so the
API confines exactly what the agent declares (``devskyy.api.workspace``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel


class PathKind(StrEnum):
    """What a path input names."""

    FOLDER = "folder"
    FILES = "files"
    COMMAND = "command"


@dataclass(frozen=True)
class PathInput:
    """The marker carried in ``Annotated`` metadata of a path input."""

    kind: PathKind
    relative_to: str | None = None


WorkspaceFolder = Annotated[str, PathInput(PathKind.FOLDER)]
"""A folder inside the workspace (default over the API: the workspace root)."""

WorkspaceFiles = Annotated[list[str], PathInput(PathKind.FILES, relative_to="target_path")]
"""Files inside the workspace, relative to the ``target_path`` input unless absolute."""

ServerCommand = Annotated[str, PathInput(PathKind.COMMAND)]
"""A command line run on the server; never taken from an HTTP request."""


def _marker(annotation: Any) -> PathInput | None:
    """The ``PathInput`` inside an annotation (through ``X | None`` and ``Optional``)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        found = [m for m in annotation.__metadata__ if isinstance(m, PathInput)]
        return found[0] if found else _marker(get_args(annotation)[0])
    if origin is Union or origin is UnionType:
        for arg in get_args(annotation):
            marker = _marker(arg)
            if marker is not None:
                return marker
    return None


@dataclass(frozen=True)
class PathField:
    """One declared path input: the model's field name, what it names, and (files) the
    folder input its entries are relative to."""

    field: str
    kind: PathKind
    relative_to: str | None = None


def path_inputs(model: type[BaseModel] | None) -> dict[str, PathField]:
    """The path inputs ``model`` declares: field name (and its alias, if any) -> field."""
    if model is None:
        return {}
    found: dict[str, PathField] = {}
    for name, info in model.model_fields.items():
        marker = next((m for m in info.metadata if isinstance(m, PathInput)), None)
        marker = marker or _marker(info.annotation)
        if marker is None:
            continue
        found[name] = PathField(name, marker.kind, marker.relative_to)
        if info.alias and info.alias != name:
            found[info.alias] = found[name]
    return found
