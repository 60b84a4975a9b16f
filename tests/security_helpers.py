"""Shared helpers for the security tests: shipped roles, a seeded RNG, managers."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import yaml

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.security_memory import MemorySecurityStore
from devskyy.adapters.security_store import SecurityStore
from devskyy.model.manifests import KINDS, Manifest
from devskyy.model.resources import ResourceSet
from devskyy.runtime.security import SecurityManager

ROOT = Path(__file__).resolve().parents[1]


def shipped_roles() -> ResourceSet:
    """The Role and RoleBinding manifests in manifests/roles/, as applied."""
    docs: list[Manifest] = []
    for path in sorted((ROOT / "manifests" / "roles").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs.append(KINDS[doc["kind"]].model_validate(doc))
    return ResourceSet(tuple(docs))


def seeded_bytes(seed: int = 7) -> Callable[[int], bytes]:
    """Deterministic random bytes (tests only; the runtime uses ``secrets``)."""
    rng = random.Random(seed)
    return rng.randbytes


def manager(
    clock: FakeClock,
    store: SecurityStore | None = None,
    roles: ResourceSet | None = None,
    **kwargs: object,
) -> SecurityManager:
    """A manager over a memory store with the shipped roles."""
    live = roles if roles is not None else shipped_roles()
    return SecurityManager(
        store or MemorySecurityStore(),
        clock,
        lambda: live,
        **kwargs,  # type: ignore[arg-type]
    )
