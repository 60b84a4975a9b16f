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
"""

from devskyy.model.security import KeyCheck, KeyReason, NewKey, SecurityRole
from devskyy.runtime.security.keys import DEFAULT_GRACE, DEFAULT_KEY_TTL, LastAdminKey
from devskyy.runtime.security.manager import SecurityManager

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
