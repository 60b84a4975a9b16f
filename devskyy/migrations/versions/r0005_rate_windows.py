"""Shared rate-limit logs: ``rate_windows`` (``adapters/rate_store.py``).

Revision 0005, after 0004. One row per principal: the times (whole microseconds) of its
accepted requests inside the window, and whether the latest was accepted. Every server
sharing the store counts in the same row with one upsert, so the per-principal limit is
exact across servers (``bigint[]`` on PostgreSQL, JSON text on SQLite).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_windows",
        sa.Column("principal", sa.String(length=255), nullable=False),
        sa.Column(
            "hits",
            sa.Text().with_variant(postgresql.ARRAY(sa.BigInteger()), "postgresql"),
            nullable=False,
        ),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("principal"),
    )


def downgrade() -> None:
    op.drop_table("rate_windows")
