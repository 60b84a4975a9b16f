"""Campaign mails sent by workflow steps: ``sent_mail`` (``adapters/sent_mail.py``).

Revision 0008, after 0007. One row per step key (run and step), recorded when the SMTP
server accepted the mail, so a step re-run after a kill reports the first delivery instead
of sending again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sent_mail",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("refused", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("sent_mail")
