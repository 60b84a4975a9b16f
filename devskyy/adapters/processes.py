"""Whether a process still runs: the liveness check of run owners and the daemon lease.

Plain ``os`` and ``/proc``, no store: ``run_store`` (is a run's owner gone?) and
``daemon_lock`` (is the lease holder gone?) both ask it.
"""

from __future__ import annotations

import os

DEAD = ("Z", "X", "x")  # zombie, dead (two spellings across kernel versions)


def process_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` from ``/proc`` (``R``, ``S``, ``Z``…), or None.

    None when there is no such process, or no ``/proc`` to ask.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except FileNotFoundError:
        return None
    except OSError:
        return "?"
    # The command name is in parentheses and may itself contain ") ": split at the last.
    _, _, rest = stat.rpartition(")")
    fields = rest.split()
    return fields[0] if fields else "?"


def alive(pid: int) -> bool:
    """True when ``pid`` is a running process (not gone, not a zombie or dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    state = process_state(pid)
    if state is None:
        # kill() found it but /proc did not: it exited in between, or there is no /proc
        # on this system (then kill() is all we can ask).
        return not os.path.isdir("/proc/self")
    return state not in DEAD
