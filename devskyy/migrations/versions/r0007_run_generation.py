"""The owner generation of a run: ``runs.generation`` (``adapters/run_store.py``).

Revision 0007, after 0006. Every claim or take-over of a run raises it, and every write of
the run's driver is applied only while the run still has the generation it claimed, so a
run is never driven by two owners at once: when a server dies and another takes its runs
over, the old owner (were it only paused) finds its next write refused and stops.
Existing runs start at 0.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("generation", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch: a batch copies the table
    # and drops the old one, and that DROP would cascade to every run's steps and events.
    op.drop_column("runs", "generation")
