"""One watch daemon per state store: a lease row in the store itself.

A lease names its holder (pid, host, since) and is renewed by heartbeats. A second
daemon finds a live lease and refuses with the holder's identity. A lease is taken
over when its heartbeat is older than ``ttl`` seconds, or when its holder is a dead
process on this same host (a ``kill -9`` leaves no heartbeat behind). Because the lease
lives in the store, it works for SQLite files and shared PostgreSQL alike.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from sqlalchemy import Column, Engine, Float, Integer, String, Table, delete, select

from devskyy.adapters.clock import Clock
from devskyy.adapters.db import metadata
from devskyy.errors import StateError

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


class LockHeld(StateError):
    """Another daemon holds the store."""

    def __init__(self, holder: Holder) -> None:
        self.holder = holder
        super().__init__(
            f"another devskyy watch holds this state store: pid {holder.pid} on {holder.host}"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DaemonLease:
    """Acquire, renew and release the store's daemon lease."""

    def __init__(self, engine: Engine, clock: Clock, *, name: str = "watch", ttl: float = 30.0):
        self.engine = engine
        self.clock = clock
        self.name = name
        self.ttl = ttl
        self.token = uuid.uuid4().hex
        self.pid = os.getpid()
        self.host = socket.gethostname()

    def _stale(self, row: Holder) -> bool:
        if self.clock.now() - row.heartbeat > self.ttl:
            return True
        return row.host == self.host and row.pid != self.pid and not _alive(row.pid)

    def acquire(self) -> None:
        """Take the lease or raise ``LockHeld`` naming the holder."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            row = conn.execute(select(leases).where(leases.c.name == self.name)).first()
            if row is not None:
                holder = Holder(row.pid, row.host, row.since, row.heartbeat)
                if row.token != self.token and not self._stale(holder):
                    raise LockHeld(holder)
                conn.execute(delete(leases).where(leases.c.name == self.name))
            conn.execute(
                leases.insert().values(
                    name=self.name,
                    token=self.token,
                    pid=self.pid,
                    host=self.host,
                    since=now,
                    heartbeat=now,
                )
            )

    def renew(self) -> None:
        """Heartbeat; raises ``StateError`` if the lease was taken over."""
        with self.engine.begin() as conn:
            done = conn.execute(
                leases.update()
                .where(leases.c.name == self.name, leases.c.token == self.token)
                .values(heartbeat=self.clock.now())
            )
            if done.rowcount != 1:
                raise StateError("the daemon lease was taken over by another process")

    def release(self) -> None:
        """Give the lease up (only if still ours)."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(leases).where(leases.c.name == self.name, leases.c.token == self.token)
            )


def holder_of(engine: Engine, name: str = "watch") -> Holder | None:
    """The current holder, if any (for status output)."""
    with engine.connect() as conn:
        row = conn.execute(select(leases).where(leases.c.name == name)).first()
    return None if row is None else Holder(row.pid, row.host, row.since, row.heartbeat)


__all__ = ["DaemonLease", "Holder", "LockHeld", "holder_of"]
