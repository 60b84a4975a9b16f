"""A run's plan on its row: ``runs.step_names`` (``adapters/run_store.py``).

Revision 0010, after 0009. A new run records the names of its steps, in order, on its
``runs`` row (one JSON list) instead of a ``pending`` row per step in ``run_steps``: a
step gets its row when it first changes, so creating a 1,000-step run writes one row, not
a thousand and one. Readers show a step without a row as pending. Runs written before
this revision keep their rows and are given their plan from them (by ``position``).
Downgrading writes the missing pending rows back, which the older readers need.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step_names", sa.JSON(none_as_null=True), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        names = (
            "(SELECT coalesce(json_agg(name ORDER BY position), '[]'::json) "
            "FROM run_steps WHERE run_steps.run_id = runs.id)"
        )
    else:  # json_group_array keeps the order of its (ordered) subquery
        names = (
            "(SELECT json_group_array(name) FROM (SELECT name FROM run_steps "
            "WHERE run_steps.run_id = runs.id ORDER BY position))"
        )
    op.execute(f"UPDATE runs SET step_names = {names}")  # noqa: S608 - fixed text


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "INSERT INTO run_steps (run_id, name, position, status, attempts) "
            "SELECT runs.id, plan.name, plan.n - 1, 'pending', 0 FROM runs, "
            "json_array_elements_text(runs.step_names) WITH ORDINALITY AS plan(name, n) "
            "WHERE runs.step_names IS NOT NULL ON CONFLICT (run_id, name) DO NOTHING"
        )
    else:
        op.execute(
            "INSERT OR IGNORE INTO run_steps (run_id, name, position, status, attempts) "
            "SELECT runs.id, plan.value, plan.key, 'pending', 0 FROM runs, "
            "json_each(runs.step_names) AS plan WHERE runs.step_names IS NOT NULL"
        )
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch: a batch copies the table
    # and drops the old one, and that DROP would cascade to every run's steps and events.
    op.drop_column("runs", "step_names")
