"""A step's row stands for its end event: ``run_steps.row_event`` (``adapters/run_store.py``).

Revision 0011, after 0010. A step that ends in its only attempt was written as two rows:
its ``run_steps`` row and an end event in ``run_step_events`` that says nothing the step
row does not (status, attempts, finish time, error or reason, start). From this revision
such a step writes its row alone, marked ``row_event``, and readers put the event back in
the run's log by time (``model.runs.with_row_events``). Older rows keep their events
(``row_event`` false). Downgrading writes the events of the marked rows back as event
rows, which the older readers need (after the run's other event rows, by finish time:
older readers order the log by row).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ALTER TABLE ... ADD COLUMN on both databases (no batch copy of the table).
    op.add_column(
        "run_steps",
        sa.Column("row_event", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.execute(
        "INSERT INTO run_step_events "
        "(run_id, step, status, attempt, at, error, retry_at, started_at, worker) "
        "SELECT run_id, name, status, attempts, finished_at, "
        "COALESCE(NULLIF(error, ''), reason), NULL, started_at, NULL "
        "FROM run_steps WHERE row_event ORDER BY run_id, finished_at, position"
    )
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch: a batch copies the table
    # and drops the old one, and that DROP would cascade to the run's events.
    op.drop_column("run_steps", "row_event")
