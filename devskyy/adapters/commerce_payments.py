"""The money side of the commerce store: payments, the ledger, sandbox gateway charges.

Each writer is one transaction (``commerce_store.write_transaction``) made idempotent
by a unique key: a payment per idempotency key, a journal entry per reference, a
sandbox charge per idempotency key. A second call, or a race lost on the unique index,
returns the stored row with ``created=False`` and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from devskyy.adapters import failpoints
from devskyy.adapters.commerce_store import (
    journal_entries,
    journal_lines,
    move_status,
    payments,
    reservations,
    sandbox_charges,
    write_transaction,
)

# --------------------------------------------------------------------------- payments


def payment_by_key(engine: Engine, idempotency_key: str) -> dict[str, Any] | None:
    """The payment stored under an idempotency key, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(payments).where(payments.c.idempotency_key == idempotency_key)
        ).first()
    return None if row is None else dict(row._mapping)


def succeeded_payment(engine: Engine, order_id: str) -> dict[str, Any] | None:
    """The order's successful payment, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(payments).where(
                payments.c.order_id == order_id, payments.c.status == "succeeded"
            )
        ).first()
    return None if row is None else dict(row._mapping)


def record_payment(
    engine: Engine,
    payment: Mapping[str, Any],
    *,
    allowed_from: Iterable[str],
    status: str,
    now: float,
) -> tuple[dict[str, Any], bool]:
    """Store a gateway result and move the order to ``status``; returns ``(row, created)``.

    The idempotency key is unique: when a row exists already (a retry, or a race),
    it is returned with ``created=False`` and nothing is written.
    """
    try:
        with write_transaction(engine) as conn:
            existing = conn.execute(
                select(payments).where(payments.c.idempotency_key == payment["idempotency_key"])
            ).first()
            if existing is not None:
                return dict(existing._mapping), False
            conn.execute(insert(payments).values(**payment, created_at=now))
            move_status(conn, payment["order_id"], allowed_from, status, now)
            row = conn.execute(
                select(payments).where(payments.c.idempotency_key == payment["idempotency_key"])
            ).one()
    except IntegrityError:
        stored = payment_by_key(engine, payment["idempotency_key"])
        if stored is None:
            raise
        return stored, False
    failpoints.hit("payment.recorded")
    return dict(row._mapping), True


# --------------------------------------------------------------------------- ledger


def _entry(conn: Connection, reference: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(journal_entries).where(journal_entries.c.reference == reference)
    ).first()
    if row is None:
        return None
    entry = dict(row._mapping)
    lines = conn.execute(
        select(journal_lines.c.account, journal_lines.c.amount_cents, journal_lines.c.memo)
        .where(journal_lines.c.entry_id == entry["id"])
        .order_by(journal_lines.c.id)
    )
    entry["lines"] = [dict(line._mapping) for line in lines]
    return entry


def entry_by_reference(engine: Engine, reference: str) -> dict[str, Any] | None:
    """A journal entry with its lines, or None."""
    with engine.connect() as conn:
        return _entry(conn, reference)


def post_sale(
    engine: Engine,
    entry: Mapping[str, Any],
    lines: Sequence[Mapping[str, Any]],
    *,
    allowed_from: Iterable[str],
    status: str,
    now: float,
) -> tuple[dict[str, Any], bool]:
    """Write a balanced journal entry for an order, commit its reservations and move it
    to ``status``, all in one transaction; returns ``(entry, created)``.

    The entry's ``reference`` is unique, so an order is booked once however often this
    is called. Lines that do not sum to zero are refused (``ValueError``) before any
    write, whatever the caller checked.
    """
    if len(lines) < 2 or sum(int(line["amount_cents"]) for line in lines) != 0:
        raise ValueError(f"journal entry {entry['reference']} is not balanced")
    try:
        with write_transaction(engine) as conn:
            existing = _entry(conn, entry["reference"])
            if existing is not None:
                return existing, False
            key = conn.execute(
                insert(journal_entries).values(**entry, created_at=now)
            ).inserted_primary_key
            assert key is not None
            entry_id = key[0]
            conn.execute(insert(journal_lines), [{**line, "entry_id": entry_id} for line in lines])
            order_id = entry.get("order_id")
            if order_id is not None:
                conn.execute(
                    update(reservations)
                    .where(reservations.c.order_id == order_id, reservations.c.status == "held")
                    .values(status="committed", updated_at=now)
                )
                move_status(conn, order_id, allowed_from, status, now)
            created = _entry(conn, entry["reference"])
            assert created is not None
    except IntegrityError:
        stored = entry_by_reference(engine, entry["reference"])
        if stored is None:
            raise
        return stored, False
    failpoints.hit("ledger.recorded")
    return created, True


def ledger_lines(engine: Engine, order_id: str | None = None) -> list[dict[str, Any]]:
    """Every journal line (optionally of one order's entries) with its entry reference."""
    query = (
        select(
            journal_entries.c.reference,
            journal_entries.c.order_id,
            journal_lines.c.account,
            journal_lines.c.amount_cents,
        )
        .join(journal_entries, journal_entries.c.id == journal_lines.c.entry_id)
        .order_by(journal_lines.c.id)
    )
    if order_id is not None:
        query = query.where(journal_entries.c.order_id == order_id)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


# --------------------------------------------------------------------------- sandbox gateway


def sandbox_charge(engine: Engine, idempotency_key: str) -> dict[str, Any] | None:
    """The sandbox gateway's charge for a key, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(sandbox_charges).where(sandbox_charges.c.idempotency_key == idempotency_key)
        ).first()
    return None if row is None else dict(row._mapping)


def put_sandbox_charge(
    engine: Engine, charge: Mapping[str, Any], now: float
) -> tuple[dict[str, Any], bool]:
    """Store a sandbox charge unless its key has one; returns ``(stored, created)``."""
    try:
        with write_transaction(engine) as conn:
            existing = conn.execute(
                select(sandbox_charges).where(
                    sandbox_charges.c.idempotency_key == charge["idempotency_key"]
                )
            ).first()
            if existing is not None:
                return dict(existing._mapping), False
            conn.execute(insert(sandbox_charges).values(**charge, created_at=now))
    except IntegrityError:
        stored = sandbox_charge(engine, charge["idempotency_key"])
        if stored is None:
            raise
        return stored, False
    stored = sandbox_charge(engine, charge["idempotency_key"])
    assert stored is not None
    failpoints.hit("gateway.charged")
    return stored, True
