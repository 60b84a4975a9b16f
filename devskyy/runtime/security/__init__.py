"""The security manager, split by concern (one module each, wired by ``manager``).

- ``manager``: ``SecurityManager``, the guide's API; ``sync()`` per request replaces
  every time-based cache with one read of the store's change marks;
- ``keys``: issue, rotate, revoke, validate (no escalation; the last admin key stays);
- ``rbac``: the compiled policy, audited decisions, runtime grants;
- ``limits``: per-principal rate limits;
- ``threats``: failure counting and blocks;
- ``audit``: the hash-chained audit log writer, checkpoints and verification;
- ``key_index``: the in-memory mirror of key records (hashes only).

It must not import the API or the CLI; the pure decisions live in ``devskyy.core``.
The names below are imported on first use: ``devskyy run`` needs only ``redaction`` of
this package (its run store), not the manager and its key, policy and audit machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, typed, for mypy and editors; imported lazily at run time
    from devskyy.model.security import KeyCheck, KeyReason, NewKey, SecurityRole
    from devskyy.runtime.security.keys import DEFAULT_GRACE, DEFAULT_KEY_TTL, LastAdminKey
    from devskyy.runtime.security.manager import SecurityManager

_EXPORTS: dict[str, str] = {
    "KeyCheck": "devskyy.model.security",
    "KeyReason": "devskyy.model.security",
    "NewKey": "devskyy.model.security",
    "SecurityRole": "devskyy.model.security",
    "DEFAULT_GRACE": "devskyy.runtime.security.keys",
    "DEFAULT_KEY_TTL": "devskyy.runtime.security.keys",
    "LastAdminKey": "devskyy.runtime.security.keys",
    "SecurityManager": "devskyy.runtime.security.manager",
}

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_KEY_TTL",
    "KeyCheck",
    "KeyReason",
    "LastAdminKey",
    "NewKey",
    "SecurityManager",
    "SecurityRole",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups find the name itself
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
