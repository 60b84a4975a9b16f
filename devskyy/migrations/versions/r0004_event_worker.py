"""The worker of each attempt: ``run_step_events.worker`` (``adapters/run_store.py``).

Revision 0004, after 0003. With ``--runner dask`` an attempt runs on a Dask worker; the
event that ends the attempt names it (address, host and pid) so that ``devskyy runs show``
can say where each attempt ran. Null for attempts run in the coordinating process.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run_step_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_step_events", schema=None) as batch_op:
        batch_op.drop_column("worker")
