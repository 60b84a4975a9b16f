"""Which campaign mails a workflow step has sent: the ``sent_mail`` table (and a twin).

The email agent's side effect (an SMTP delivery) happens outside devskyy's records, so a
step re-run after a crash or a kill would send the mail again. Inside a workflow step the
agent keys its mail by run and step (``runtime.step_context``): the Message-ID is derived
from that key, and the delivery is recorded here right after the SMTP server accepted it.
A re-run finds the record and reports the first delivery instead of sending again. The
window between the server's acceptance and this record stays (a kill exactly there sends
twice); the derived Message-ID makes such a duplicate recognisable to mail systems.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Column, Engine, Float, String, Table, Text, select
from sqlalchemy.exc import IntegrityError

from devskyy.adapters.db import metadata
from devskyy.model.jsonlimits import bounded_loads

sent_mail_table = Table(
    "sent_mail",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("message_id", String(255), nullable=False),
    Column("refused", Text, nullable=False),  # JSON list of refused recipients
    Column("sent_at", Float, nullable=False),
)


@dataclass(frozen=True)
class SentMail:
    """One delivery the SMTP server accepted."""

    key: str
    message_id: str
    refused: tuple[str, ...]
    sent_at: float


class SentMailStore(Protocol):
    """Look up and record deliveries by step key."""

    def get(self, key: str) -> SentMail | None: ...

    def record(self, sent: SentMail) -> None: ...


class SqlSentMail:
    """``sent_mail`` in the state store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, key: str) -> SentMail | None:
        query = select(sent_mail_table).where(sent_mail_table.c.key == key)
        with self._engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        refused = tuple(str(r) for r in bounded_loads(row["refused"]))
        return SentMail(row["key"], row["message_id"], refused, float(row["sent_at"]))

    def record(self, sent: SentMail) -> None:
        """Record a delivery; a second record of the same key keeps the first."""
        values = {
            "key": sent.key,
            "message_id": sent.message_id,
            "refused": json.dumps(list(sent.refused)),
            "sent_at": sent.sent_at,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(sent_mail_table.insert().values(**values))
        except IntegrityError:
            pass  # recorded by an earlier attempt: the first delivery stands


class MemorySentMail:
    """The in-memory twin."""

    def __init__(self) -> None:
        self.rows: dict[str, SentMail] = {}

    def get(self, key: str) -> SentMail | None:
        return self.rows.get(key)

    def record(self, sent: SentMail) -> None:
        self.rows.setdefault(sent.key, sent)
