"""``devskyy watch --standby``: wait for the store's daemon lease, and record a takeover.

``wait_for_lease`` takes the lease at once when it is free, or polls (every fifth of the
TTL, at most 1 s, on the clock seam) while another daemon holds it, until the holder stops
renewing, dies or turns zombie (``adapters.daemon_lock`` decides), or a signal sets ``stop``.
A store error while standing by is logged and retried: a standby survives outages.
``record_takeover`` logs and audits (``daemon.takeover``) a lease taken from another daemon.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Any

from devskyy.adapters.clock import Clock
from devskyy.adapters.daemon_lock import DaemonLease, LockHeld, Takeover
from devskyy.model.security import AuditEvent, EventType, Outcome
from devskyy.runtime.system import System

log = logging.getLogger("devskyy.watch")


async def wait_for_lease(
    lease: DaemonLease,
    clock: Clock,
    *,
    standby: bool,
    stop: asyncio.Event,
    poll: float | None = None,
) -> Takeover | None:
    """Take the store's lease; with ``standby``, wait for it until ``stop`` is set.

    Returns the ``Takeover`` when it was taken from a dead or silent holder (to log and
    audit), None when it was free. Raises ``LockHeld`` without ``standby``, and
    ``StandbyStopped`` when ``stop`` is set while waiting.
    A store error while standing by is logged and retried: a standby survives outages.
    """
    every = poll if poll is not None else min(1.0, lease.ttl / 5)
    announced: tuple[int, str] | None = None
    while True:
        try:
            return await asyncio.to_thread(lease.try_acquire)
        except LockHeld as held:
            if not standby:
                raise
            who = (held.holder.pid, held.holder.host)
            if who != announced:
                announced = who
                log.info(
                    "standing by: another daemon holds the lease",
                    extra={"fields": {"holder_pid": who[0], "holder_host": who[1]}},
                )
        except Exception as exc:
            if not standby:
                raise
            log_lease_error("read", exc)
        if await _stopped_within(clock, every, stop):
            raise StandbyStopped()


def log_lease_error(doing: str, exc: Exception) -> None:
    """Log a store error met while ``doing`` the lease (to be retried), with its traceback."""
    log.error(
        f"cannot {doing} the daemon lease; retrying",
        extra={
            "fields": {
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": "".join(traceback.format_exception(exc)),
            }
        },
    )


def record_takeover(system: System, takeover: Takeover) -> None:
    """Log and audit that this daemon took the lease from a dead or silent one."""
    previous = takeover.previous
    details: dict[str, Any] = {
        "previous_pid": previous.pid,
        "previous_host": previous.host,
        "previous_heartbeat": previous.heartbeat,
        "reason": takeover.reason,
    }
    log.warning(
        f"took over the daemon lease from pid {previous.pid} on {previous.host}: {takeover.reason}",
        extra={"fields": details},
    )
    event = AuditEvent(
        system.clock.now(),
        "watch",
        EventType.DAEMON_TAKEOVER,
        "daemon/watch",
        Outcome.SUCCESS,
        details,
    )
    system.security_manager().audit.record(event, urgent=True)


class StandbyStopped(Exception):
    """A signal ended ``--standby`` before the lease came free."""


async def _stopped_within(clock: Clock, seconds: float, stop: asyncio.Event) -> bool:
    """Sleep ``seconds`` on the clock seam; True at once if ``stop`` is set meanwhile."""
    if stop.is_set():
        return True
    waiter = asyncio.ensure_future(stop.wait())
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        sleeper.cancel()
    return stop.is_set()
