"""Alembic's environment: migrate the connection ``devskyy.adapters.store_schema`` gives.

devskyy never reads ``alembic.ini``: ``adapters/store_schema.py`` builds the configuration in code
and passes an open connection in ``config.attributes["connection"]``, so an upgrade runs in
the caller's transaction. ``render_as_batch`` lets a migration alter a column on SQLite
(copy-and-move), which has no ``ALTER COLUMN``.
"""

from __future__ import annotations

from alembic import context

from devskyy.adapters.db import metadata, register_all_tables


def run_migrations() -> None:
    """Run the pending migrations on the given connection (online mode only)."""
    connection = context.config.attributes["connection"]
    register_all_tables()
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


try:
    _configured = context.config is not None
except NameError:  # imported outside Alembic (a test that imports every module): do nothing
    _configured = False
if _configured:
    run_migrations()
