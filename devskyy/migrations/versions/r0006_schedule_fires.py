"""Schedule fires: ``schedule_fires`` (``adapters/schedule_store.py``).

Revision 0006, after 0005. One row per (workflow, schedule key, due time), recorded by the
leading watch daemon before a scheduled run starts; the primary key is what makes a
restarted daemon or a standby that took over fire each due time once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_fires",
        sa.Column("workflow", sa.String(length=64), nullable=False),
        sa.Column("schedule", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("workflow", "schedule", "due_at"),
    )


def downgrade() -> None:
    op.drop_table("schedule_fires")
