"""Audit checkpoints in the log of a long-running process (``serve``, ``watch``).

Every ``interval`` seconds (and once at start) the head of the audit chain is logged as
``audit checkpoint {"seq": …, "hash": …, "at": …}``; with ``--log-format json`` the same
three values are fields of the line. A log kept off the server (journald forwarding, a
log service) then holds checkpoints that ``devskyy audit --verify --checkpoint LOG``
checks: deleting the newest events, the head row or the whole table is caught.
"""

from __future__ import annotations

import asyncio
import json
import logging

from devskyy.adapters.clock import Clock
from devskyy.runtime.security.manager import SecurityManager

log = logging.getLogger("devskyy.security.audit")

DEFAULT_INTERVAL = 300.0


def log_checkpoint(manager: SecurityManager) -> None:
    """Log one checkpoint now (errors are logged, never raised: the server goes on)."""
    try:
        mark = manager.audit_checkpoint().to_dict()
    except Exception as exc:  # a store hiccup must not stop the server's loop
        log.error("audit checkpoint failed: %s", type(exc).__name__)
        return
    log.info("audit checkpoint %s", json.dumps(mark, sort_keys=True), extra={"fields": mark})


async def checkpoint_loop(manager: SecurityManager, clock: Clock, interval: float) -> None:
    """Log a checkpoint now and every ``interval`` seconds until cancelled."""
    while True:
        # The store is synchronous: write the pending events and read the head off
        # the event loop, so requests are not held up by it.
        await asyncio.to_thread(log_checkpoint, manager)
        await clock.sleep(interval)
