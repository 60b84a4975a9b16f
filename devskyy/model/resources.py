"""Sets of manifests keyed by (kind, name): the desired and the live state.

``plan(desired, live)`` compares two ``ResourceSet`` values; the manifests loaded from
files and the resources read back from the store are both this type.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from devskyy.model.manifests import KINDS, Agent, Manifest, Role, RoleBinding, Workflow

KIND_ORDER = ("Role", "RoleBinding", "Agent", "Workflow")


@dataclass(frozen=True, order=True)
class ResourceKey:
    """Identity of a resource: its kind and its name."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


def key_of(manifest: Manifest) -> ResourceKey:
    """The key of one manifest."""
    return ResourceKey(manifest.kind, manifest.metadata.name)


def document(manifest: Manifest) -> dict[str, Any]:
    """The canonical JSON document of a manifest (camelCase, defaults filled in)."""
    return manifest.model_dump(mode="json", by_alias=True)


def from_document(data: dict[str, Any]) -> Manifest:
    """Rebuild a manifest from its canonical document."""
    return KINDS[data["kind"]].model_validate(data)


@dataclass(frozen=True)
class ResourceSet:
    """An immutable set of manifests, at most one per (kind, name)."""

    manifests: tuple[Manifest, ...] = ()
    _index: dict[ResourceKey, Manifest] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {key_of(m): m for m in self.manifests})

    def __iter__(self) -> Iterator[Manifest]:
        return iter(self.manifests)

    def __len__(self) -> int:
        return len(self.manifests)

    def keys(self) -> set[ResourceKey]:
        return set(self._index)

    def get(self, kind: str, name: str) -> Manifest | None:
        return self._index.get(ResourceKey(kind, name))

    def by_kind(self, kind: str) -> tuple[Manifest, ...]:
        return tuple(m for m in self.manifests if m.kind == kind)

    @property
    def agents(self) -> tuple[Agent, ...]:
        return tuple(m for m in self.manifests if isinstance(m, Agent))

    @property
    def workflows(self) -> tuple[Workflow, ...]:
        return tuple(m for m in self.manifests if isinstance(m, Workflow))

    @property
    def roles(self) -> tuple[Role, ...]:
        return tuple(m for m in self.manifests if isinstance(m, Role))

    @property
    def role_bindings(self) -> tuple[RoleBinding, ...]:
        return tuple(m for m in self.manifests if isinstance(m, RoleBinding))
