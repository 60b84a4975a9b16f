"""Named kill points for crash tests, as etcd's failpoints and SQLite's crash tests have.

The code calls ``hit("name")`` right after each durable write (a commit that a guarantee
rests on). Nothing happens unless the environment variable ``DEVSKYY_FAILPOINTS`` lists
the name: then the process ends at once with ``os._exit(137)``, the status of a
``kill -9``: no ``finally``, no atexit, no flush, exactly as a crash. A test sets the
variable for a real subprocess and checks what survives.

``DEVSKYY_FAILPOINTS=apply.committed,run.step_recorded:3`` kills at the first apply commit,
or at the third step success recorded (``name:N`` counts hits in this process).

Every name is listed in ``FAILPOINTS`` with the guarantee it tests;
``tests/test_failpoints.py`` checks that each is reached in the code and killed at.
"""

from __future__ import annotations

import os

ENV = "DEVSKYY_FAILPOINTS"
EXIT_STATUS = 137  # 128 + SIGKILL: what a supervisor sees after kill -9

FAILPOINTS: dict[str, str] = {
    "apply.writing": "inside an apply's transaction, all written, not committed (nothing)",
    "apply.committed": "a revision and its audit event committed together (whole revision)",
    "audit.appended": "audit events appended (the chain stays verifiable)",
    "run.created": "a run's record committed before any step starts (resumable run)",
    "run.step_recorded": "a step's success recorded (never re-run on resume)",
    "order.stored": "an order and its lines stored (a re-run reuses it: no orphan order)",
    "gateway.charged": "the sandbox gateway charged, before devskyy recorded it (no 2nd charge)",
    "payment.recorded": "a payment's outcome recorded (a re-run never charges again)",
    "ledger.recorded": "a sale's journal entry recorded (never twice)",
    "backup.recorded": "a fix's backup written before its first write (restore RUN_ID finds it)",
    "fix.backup_recorded": "a fix step's backup and its run recorded (restore RUN_ID finds it)",
    "fix.file_written": "one fixed file written (restore RUN_ID undoes it; a re-run redoes it)",
    "email.recorded": "a campaign mail's delivery recorded (a re-run never sends it again)",
}

_armed: dict[str, int] | None = None
_hits: dict[str, int] = {}


def _parse(value: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for item in value.split(","):
        name, _, count = item.strip().partition(":")
        if name:
            armed[name] = int(count) if count.isdigit() and int(count) > 0 else 1
    return armed


def reload() -> None:
    """Read ``DEVSKYY_FAILPOINTS`` again and reset the hit counts (tests in one process)."""
    global _armed  # noqa: PLW0603 - one process-wide switch, read once
    _armed = _parse(os.environ.get(ENV, ""))
    _hits.clear()


def armed(name: str) -> bool:
    """Whether failpoint ``name`` is armed (a caller that would ``hit`` it once per item
    of a batch asks once per batch)."""
    if _armed is None:
        reload()
    assert _armed is not None
    return name in _armed


def hit(name: str) -> None:
    """End the process as ``kill -9`` would if failpoint ``name`` is armed (else nothing)."""
    if _armed is None:
        reload()
    assert _armed is not None
    wanted = _armed.get(name)
    if wanted is None:
        return
    _hits[name] = count = _hits.get(name, 0) + 1
    if count == wanted:
        os._exit(EXIT_STATUS)
