"""``python -m devskyy.migrations new "what changed"``: write the next migration file.

Upgrades a scratch SQLite store to the current head, lets Alembic's autogenerate compare
it with the models, and writes ``versions/r<NNNN>_<slug>.py`` (NNNN = head + 1). Review the
file before committing: autogenerate cannot tell a rename from a drop and an add, and
data moves are yours to write.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def new(message: str) -> Path:
    """Write the next revision for ``message``; return its path."""
    from alembic import command  # noqa: PLC0415 - a developer tool, not a runtime path
    from sqlalchemy import create_engine  # noqa: PLC0415

    from devskyy.adapters import store_schema  # noqa: PLC0415

    head = store_schema.head()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        with engine.begin() as conn:
            config = store_schema.alembic_config(conn)
            command.upgrade(config, "head")
            script = command.revision(
                config, message=message, autogenerate=True, rev_id=f"{int(head) + 1:04d}"
            )
        engine.dispose()
    store_schema.script_revisions.cache_clear()
    assert script is not None
    assert not isinstance(script, list)
    return Path(script.path)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devskyy.migrations")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("new", help="write the next migration from the models' changes")
    add.add_argument("message", help="what changed, e.g. 'leases table'")
    args = parser.parse_args()
    print(new(args.message))


if __name__ == "__main__":
    main()
