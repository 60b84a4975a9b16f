"""Expired rate-limit rows can go: ``rate_windows.expires_at`` (``adapters/rate_store.py``).

Revision 0009, after 0008. Every upsert writes the time (whole microseconds) after which
its row can no longer count, and servers delete the rows past it. Rows written before this
revision do not say their window: they are given their newest time plus two days, which
covers any window up to a day (the next request of that principal writes the exact value).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Two windows of a day, in microseconds: a row from before 0009 goes after that.
_OLD_ROWS_KEPT = 2 * 86_400 * 1_000_000


def upgrade() -> None:
    with op.batch_alter_table("rate_windows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.BigInteger(), nullable=True))
    # A log is never empty (an accepted request appends, a refused one keeps ``limit``).
    if op.get_bind().dialect.name == "postgresql":
        newest = "(SELECT max(h) FROM unnest(hits) AS h)"
    else:
        newest = "(SELECT max(value) FROM json_each(rate_windows.hits))"
    op.execute(f"UPDATE rate_windows SET expires_at = {newest} + {_OLD_ROWS_KEPT}")  # noqa: S608


def downgrade() -> None:
    with op.batch_alter_table("rate_windows", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
