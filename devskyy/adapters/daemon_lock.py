"""One watch daemon per state store: a lease row in the store itself.

A lease names its holder (pid, host, since) and is renewed by heartbeats. A second daemon
finds a live lease and is refused with the holder's identity (``LockHeld``), or, with
``devskyy watch --standby``, polls until it can take the lease over. A lease is taken over
when its heartbeat is older than ``ttl`` seconds, or when its holder is a process on this
same host that is gone or a zombie (``kill -9`` leaves no heartbeat behind, and a killed
process that its parent has not reaped yet still answers ``kill(pid, 0)``: its state in
``/proc/PID/stat`` is ``Z``). Because the lease lives in the store, it works for SQLite
files and shared PostgreSQL alike.

Every change of holder is a compare-and-swap on the row as it was read (token and
heartbeat), so two standbys racing for a stale lease cannot both win, and a holder's renewal
that lands first makes the takeover fail. ``fence(conn)`` is the same check inside another
transaction: the reconciler's apply runs it on its own connection before writing, so a
daemon whose lease was taken over (paused, partitioned) can never commit a revision next to
the new leader; the heartbeat write also locks the lease row until that apply commits.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Engine, Float, Integer, String, Table, select
from sqlalchemy.exc import IntegrityError

from devskyy.adapters.clock import Clock
from devskyy.adapters.db import metadata
from devskyy.adapters.processes import DEAD, alive, process_state
from devskyy.errors import StateError

DEFAULT_TTL = 10.0
"""Seconds without a heartbeat after which a lease is stale (renewed every third of it)."""

leases = Table(
    "daemon_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("token", String(64), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("host", String(255), nullable=False),
    Column("since", Float, nullable=False),
    Column("heartbeat", Float, nullable=False),
)


@dataclass(frozen=True)
class Holder:
    """Who holds the lease."""

    pid: int
    host: str
    since: float
    heartbeat: float


@dataclass(frozen=True)
class Takeover:
    """A lease taken from another holder: who it was, and why it was free."""

    previous: Holder
    reason: str


class LockHeld(StateError):
    """Another daemon holds the store."""

    def __init__(self, holder: Holder) -> None:
        self.holder = holder
        super().__init__(
            f"another devskyy watch holds this state store: pid {holder.pid} on {holder.host}"
        )


class LeaseLost(StateError):
    """This daemon's lease was taken over: it must stop applying at once."""


class DaemonLease:
    """Acquire, renew, fence and release the store's daemon lease."""

    def __init__(
        self, engine: Engine, clock: Clock, *, name: str = "watch", ttl: float = DEFAULT_TTL
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.name = name
        self.ttl = ttl
        self.token = uuid.uuid4().hex
        self.pid = os.getpid()
        self.host = socket.gethostname()

    @property
    def renew_every(self) -> float:
        """How often the holder heartbeats: a third of the TTL (two misses are tolerated)."""
        return self.ttl / 3

    def _why_free(self, row: Holder) -> str | None:
        """Why ``row``'s lease may be taken over, or None while its holder is live."""
        age = self.clock.now() - row.heartbeat
        if age > self.ttl:
            return f"no heartbeat for {age:.1f}s (ttl {self.ttl:g}s)"
        if row.host == self.host and row.pid != self.pid and not alive(row.pid):
            state = process_state(row.pid)
            return "its process is a zombie" if state in DEAD else "its process is gone"
        return None

    def try_acquire(self) -> Takeover | None:
        """Take the lease; ``LockHeld`` while a live daemon holds it.

        Returns the ``Takeover`` when the lease was taken from another (dead or silent)
        holder, None when it was free or already ours.
        """
        now = self.clock.now()
        values = {
            "token": self.token,
            "pid": self.pid,
            "host": self.host,
            "since": now,
            "heartbeat": now,
        }
        try:
            with self.engine.begin() as conn:
                row = conn.execute(select(leases).where(leases.c.name == self.name)).first()
                if row is None:
                    conn.execute(leases.insert().values(name=self.name, **values))
                    return None
                holder = Holder(row.pid, row.host, row.since, row.heartbeat)
                if row.token == self.token:
                    self._beat(conn)
                    return None
                reason = self._why_free(holder)
                if reason is None:
                    raise LockHeld(holder)
                swapped = conn.execute(
                    leases.update()
                    .where(
                        leases.c.name == self.name,
                        leases.c.token == row.token,
                        leases.c.heartbeat == row.heartbeat,
                    )
                    .values(**values)
                )
                if swapped.rowcount != 1:
                    # Someone renewed or took it between our read and our write.
                    raise LockHeld(holder)
                return Takeover(holder, reason)
        except IntegrityError:
            # Another daemon inserted the first row at the same moment: it won.
            current = holder_of(self.engine, self.name)
            raise LockHeld(current or Holder(0, "?", now, now)) from None

    def acquire(self) -> Takeover | None:
        """Alias of ``try_acquire`` (kept for callers of the first version)."""
        return self.try_acquire()

    def _beat(self, conn: Any) -> None:
        done = conn.execute(
            leases.update()
            .where(leases.c.name == self.name, leases.c.token == self.token)
            .values(heartbeat=self.clock.now())
        )
        if done.rowcount != 1:
            raise LeaseLost(
                "the daemon lease was taken over by another process; this daemon stops applying"
            )

    def renew(self) -> None:
        """Heartbeat; raises ``LeaseLost`` if the lease was taken over."""
        with self.engine.begin() as conn:
            self._beat(conn)

    def fence(self, conn: Any) -> None:
        """Inside another transaction (an apply): raise ``LeaseLost`` unless we hold the lease.

        The check is a heartbeat write, so the row stays locked (PostgreSQL) or the file
        write-locked (SQLite) until that transaction ends: a takeover waits for it, then
        finds a fresh heartbeat.
        """
        self._beat(conn)

    def release(self) -> None:
        """Give the lease up (only if still ours)."""
        with self.engine.begin() as conn:
            conn.execute(
                leases.delete().where(leases.c.name == self.name, leases.c.token == self.token)
            )


def holder_of(engine: Engine, name: str = "watch") -> Holder | None:
    """The current holder, if any (for status output)."""
    with engine.connect() as conn:
        row = conn.execute(select(leases).where(leases.c.name == name)).first()
    return None if row is None else Holder(row.pid, row.host, row.since, row.heartbeat)


__all__ = [
    "DEFAULT_TTL",
    "DaemonLease",
    "Holder",
    "LeaseLost",
    "LockHeld",
    "Takeover",
    "alive",
    "holder_of",
    "process_state",
]
