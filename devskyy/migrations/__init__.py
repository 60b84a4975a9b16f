"""The SQL store's schema migrations (Alembic): ``env.py`` and ``versions/``.

Shipped inside the package so that an installed wheel can upgrade a store
(``devskyy migrate``). ``devskyy.adapters.store_schema`` runs them on a connection it opens;
nothing here is imported at run time except by Alembic.

Adding a migration is one file: change the tables in their ``adapters`` module, then
``python -m devskyy.migrations new "what changed"`` writes ``versions/rNNNN_<slug>.py``
from the difference between the models and a store at the current head. Review it (Alembic
cannot see renames), commit it. ``tests/test_migrations.py`` fails while models and
migrations differ, or when two migrations claim the same parent.
"""
