"""The security change counter: ``security_version`` (``adapters/security_store.py``).

Revision 0003, after 0002. One row per kind (id 1 keys, 2 grants, 3 blocks) whose
``counter`` is raised in the same transaction as every write of that kind. Every server
reads them (with the latest revision number) once per request, so a revocation, block,
grant or Roles revision made by any process takes effect on the next request everywhere.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "security_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("counter", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("security_version")
