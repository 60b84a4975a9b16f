"""The live-state view: one immutable snapshot of the applied resources per revision.

``LiveView.current()`` returns a frozen ``LiveState(revision, agents, workflows, roles,
bindings)``. The manifests of a revision are read from the store and parsed ONCE; after
that a call costs one revision-number query (``StateStore.current_revision``), never a
reload: the snapshot is swapped only when the number moved, which is how a revision
applied by another process (``devskyy apply`` in CI, the watch daemon) becomes visible.
``swap(revision, resources)`` lets the process that applied a revision install its
snapshot at once, and ``refresh()`` forces one read.

Readers hold a snapshot for as long as they need a consistent view (a request, a run
session); nobody parses manifests per request. Derived values that several readers need
(``rate_limited_agents``) are computed once per snapshot.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from devskyy.adapters.state_store import StateStore
from devskyy.model.manifests import Agent, Role, RoleBinding, Workflow
from devskyy.model.resources import ResourceSet


@dataclass(frozen=True)
class LiveState:
    """The applied resources of one revision (``None``: nothing applied yet)."""

    revision: int | None
    resources: ResourceSet = field(default_factory=ResourceSet, repr=False)

    @cached_property
    def agents(self) -> Mapping[str, Agent]:
        return MappingProxyType({a.name: a for a in self.resources.agents})

    @cached_property
    def workflows(self) -> Mapping[str, Workflow]:
        return MappingProxyType({w.name: w for w in self.resources.workflows})

    @cached_property
    def roles(self) -> Mapping[str, Role]:
        return MappingProxyType({r.name: r for r in self.resources.roles})

    @cached_property
    def bindings(self) -> Mapping[str, RoleBinding]:
        return MappingProxyType({b.name: b for b in self.resources.role_bindings})

    @cached_property
    def rate_limited_agents(self) -> frozenset[str]:
        """Agents whose manifest sets ``rateLimit`` (the API counts them by it)."""
        return frozenset(a.name for a in self.resources.agents if a.spec.rate_limit)


class LiveView:
    """The current ``LiveState`` of a store (see the module docstring)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._lock = threading.Lock()  # API threads and the event loop may both read
        self._state: LiveState | None = None
        self.loads = 0

    def current(self) -> LiveState:
        """The snapshot of the store's current revision (re-read only when it moved)."""
        revision = self._store.current_revision()
        state = self._state
        if state is not None and state.revision == revision:
            return state
        with self._lock:
            state = self._state
            if state is None or state.revision != revision:
                state = self._load()
            return state

    def resources(self) -> ResourceSet:
        """The current resources (for readers that take a ``ResourceSet`` source)."""
        return self.current().resources

    def refresh(self) -> LiveState:
        """Read the store now, whatever the revision says."""
        with self._lock:
            return self._load()

    def swap(self, revision: int, resources: ResourceSet) -> LiveState:
        """Install the snapshot of a revision this process has just applied."""
        state = LiveState(revision, resources)
        with self._lock:
            if self._state is None or (self._state.revision or 0) <= revision:
                self._state = state
        return state

    def _load(self) -> LiveState:
        # The revision is read before the resources: a revision applied in between is
        # seen as a newer number on the next call, and read then.
        revision = self._store.current_revision()
        state = LiveState(revision, self._store.live())
        self._state = state
        self.loads += 1
        return state
