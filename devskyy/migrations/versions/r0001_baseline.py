"""The baseline: the schema of devskyy 0.1.0, as its ``create_all`` made it.

Revision 0001, the first. A store made by 0.1.0 has these tables and no ``alembic_version``;
``devskyy migrate`` checks that it matches, stamps it 0001 and upgrades it from there.
Frozen: never edit this file; change the schema in a new revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("principal", sa.String(length=253), nullable=False),
        sa.Column("role", sa.String(length=63), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("expires", sa.Float(), nullable=False),
        sa.Column("revoked", sa.Float(), nullable=True),
        sa.Column("rotated_from", sa.String(length=32), nullable=True),
        sa.Column("grace_until", sa.Float(), nullable=True),
        sa.Column("last_used", sa.Float(), nullable=True),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_index(op.f("ix_api_keys_principal"), "api_keys", ["principal"], unique=False)
    op.create_index(op.f("ix_api_keys_updated"), "api_keys", ["updated"], unique=False)
    op.create_table(
        "api_task_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("task_type", sa.String(length=255), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("finished_at", sa.Double(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=253), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("resource", sa.String(length=253), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(op.f("ix_audit_events_actor"), "audit_events", ["actor"], unique=False)
    op.create_index(
        op.f("ix_audit_events_event_type"), "audit_events", ["event_type"], unique=False
    )
    op.create_index(op.f("ix_audit_events_time"), "audit_events", ["time"], unique=False)
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "blocks",
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("until", sa.Float(), nullable=False),
        sa.Column("offences", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("principal", sa.String(length=253), nullable=True),
        sa.PrimaryKeyConstraint("subject"),
    )
    op.create_table(
        "commerce_accounts",
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "commerce_orders",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("customer", sa.String(length=254), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal_cents", sa.Integer(), nullable=False),
        sa.Column("tax_cents", sa.Integer(), nullable=False),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("cost_cents", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_commerce_orders_status"), "commerce_orders", ["status"], unique=False)
    op.create_table(
        "commerce_products",
        sa.Column("sku", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("cost_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "price_cents >= 0 AND cost_cents >= 0", name="ck_commerce_products_money"
        ),
        sa.CheckConstraint("stock >= 0", name="ck_commerce_products_stock"),
        sa.PrimaryKeyConstraint("sku"),
    )
    op.create_table(
        "commerce_sandbox_charges",
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("charge_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("decline_code", sa.String(length=40), nullable=True),
        sa.Column("card_last4", sa.String(length=4), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key"),
        sa.UniqueConstraint("charge_id"),
    )
    op.create_table(
        "daemon_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.Column("heartbeat", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "executions",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(length=32), nullable=False),
        sa.Column("task_type", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("duration", sa.Double(), nullable=False),
        sa.Column("agents", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("task_id"),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("principal", sa.String(length=253), nullable=False),
        sa.Column("resource", sa.String(length=253), nullable=False),
        sa.Column("permission", sa.String(length=16), nullable=False),
        sa.Column("granted_by", sa.String(length=253), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("principal", "resource", "permission", name="uq_grants_triple"),
    )
    op.create_index(op.f("ix_grants_principal"), "grants", ["principal"], unique=False)
    op.create_table(
        "resources",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "name"),
    )
    op.create_table(
        "revisions",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.Column("git_dirty", sa.Boolean(), nullable=True),
        sa.Column("rollback_of", sa.Integer(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("number"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workflow", sa.String(length=63), nullable=False),
        sa.Column("params", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.Column("finished_at", sa.Double(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("heartbeat_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_runs_created_at"), "runs", ["created_at"], unique=False)
    op.create_index(op.f("ix_runs_workflow"), "runs", ["workflow"], unique=False)
    op.create_table(
        "commerce_journal_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["commerce_orders.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    op.create_index(
        op.f("ix_commerce_journal_entries_order_id"),
        "commerce_journal_entries",
        ["order_id"],
        unique=False,
    )
    op.create_table(
        "commerce_order_lines",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
        sa.Column("unit_cost_cents", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_commerce_order_lines_quantity"),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["commerce_orders.id"],
        ),
        sa.ForeignKeyConstraint(
            ["sku"],
            ["commerce_products.sku"],
        ),
        sa.PrimaryKeyConstraint("order_id", "sku"),
    )
    op.create_table(
        "commerce_payments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("gateway", sa.String(length=40), nullable=False),
        sa.Column("charge_id", sa.String(length=64), nullable=True),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("decline_code", sa.String(length=40), nullable=True),
        sa.Column("card_brand", sa.String(length=20), nullable=False),
        sa.Column("card_last4", sa.String(length=4), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["commerce_orders.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index(
        op.f("ix_commerce_payments_order_id"), "commerce_payments", ["order_id"], unique=False
    )
    op.create_table(
        "commerce_reservations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_commerce_reservations_quantity"),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["commerce_orders.id"],
        ),
        sa.ForeignKeyConstraint(
            ["sku"],
            ["commerce_products.sku"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "sku", name="uq_commerce_reservations_order_sku"),
    )
    op.create_index(
        op.f("ix_commerce_reservations_order_id"),
        "commerce_reservations",
        ["order_id"],
        unique=False,
    )
    op.create_table(
        "execution_agents",
        sa.Column("task_id", sa.String(length=32), nullable=False),
        sa.Column("agent", sa.String(length=63), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["executions.task_id"],
        ),
        sa.PrimaryKeyConstraint("task_id", "agent"),
    )
    op.create_index(op.f("ix_execution_agents_agent"), "execution_agents", ["agent"], unique=False)
    op.create_table(
        "run_step_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("retry_at", sa.Double(), nullable=True),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_run_step_events_run", "run_step_events", ["run_id", "id"], unique=False)
    op.create_table(
        "run_steps",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.Column("finished_at", sa.Double(), nullable=True),
        sa.Column("duration", sa.Double(), nullable=True),
        sa.Column("output", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "name"),
    )
    op.create_table(
        "commerce_journal_lines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=10), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("memo", sa.String(length=200), nullable=False),
        sa.CheckConstraint("amount_cents <> 0", name="ck_commerce_journal_lines_nonzero"),
        sa.ForeignKeyConstraint(
            ["account"],
            ["commerce_accounts.code"],
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["commerce_journal_entries.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_commerce_journal_lines_entry_id"),
        "commerce_journal_lines",
        ["entry_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_commerce_journal_lines_entry_id"), table_name="commerce_journal_lines")
    op.drop_table("commerce_journal_lines")
    op.drop_table("run_steps")
    op.drop_index("ix_run_step_events_run", table_name="run_step_events")
    op.drop_table("run_step_events")
    op.drop_index(op.f("ix_execution_agents_agent"), table_name="execution_agents")
    op.drop_table("execution_agents")
    op.drop_index(op.f("ix_commerce_reservations_order_id"), table_name="commerce_reservations")
    op.drop_table("commerce_reservations")
    op.drop_index(op.f("ix_commerce_payments_order_id"), table_name="commerce_payments")
    op.drop_table("commerce_payments")
    op.drop_table("commerce_order_lines")
    op.drop_index(
        op.f("ix_commerce_journal_entries_order_id"), table_name="commerce_journal_entries"
    )
    op.drop_table("commerce_journal_entries")
    op.drop_index(op.f("ix_runs_workflow"), table_name="runs")
    op.drop_index(op.f("ix_runs_created_at"), table_name="runs")
    op.drop_table("runs")
    op.drop_table("revisions")
    op.drop_table("resources")
    op.drop_index(op.f("ix_grants_principal"), table_name="grants")
    op.drop_table("grants")
    op.drop_table("executions")
    op.drop_table("daemon_leases")
    op.drop_table("commerce_sandbox_charges")
    op.drop_table("commerce_products")
    op.drop_index(op.f("ix_commerce_orders_status"), table_name="commerce_orders")
    op.drop_table("commerce_orders")
    op.drop_table("commerce_accounts")
    op.drop_table("blocks")
    op.drop_table("audit_head")
    op.drop_index(op.f("ix_audit_events_time"), table_name="audit_events")
    op.drop_index(op.f("ix_audit_events_event_type"), table_name="audit_events")
    op.drop_index(op.f("ix_audit_events_actor"), table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_table("api_task_runs")
    op.drop_index(op.f("ix_api_keys_updated"), table_name="api_keys")
    op.drop_index(op.f("ix_api_keys_principal"), table_name="api_keys")
    op.drop_table("api_keys")
