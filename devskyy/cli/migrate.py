"""``devskyy migrate``: upgrade the state store's schema to this devskyy's head revision.

Every other command refuses a store that is behind and names this one. A SQLite file is
copied beside itself first (``state.db.before-<revision>``, 0600); the upgrade runs in one
locked transaction, and the store's files lose the group and other access 0.1.0 gave
them, as does the store's folder when it is the store's own (``.devskyy``, or a folder
holding nothing but the store's files: ``adapters.store_folder``). ``--check`` only
reports: exit 0 at head, 2 when a migration is pending (as ``plan --detailed-exitcode``),
1 on an error.
"""

from __future__ import annotations

import click

from devskyy.cli._common import CliContext, emit, error_boundary, output_option
from devskyy.errors import StateError


@click.command()
@click.option("--check", is_flag=True, help="Only report; exit 2 if a migration is pending.")
@output_option("table", "json", "yaml")
@click.pass_obj
@error_boundary
def migrate(obj: CliContext, check: bool, output: str) -> None:
    """Upgrade the state store's schema (Alembic migrations shipped with devskyy)."""
    from devskyy.adapters import store_schema  # noqa: PLC0415 - SQLAlchemy is slow to import
    from devskyy.adapters.db import make_private, open_engine  # noqa: PLC0415
    from devskyy.adapters.store_folder import make_store_folder_private  # noqa: PLC0415
    from devskyy.adapters.store_url import shown_url, sqlite_file  # noqa: PLC0415

    url = obj.url()
    engine = open_engine(url, create=False)
    try:
        with engine.connect() as conn:
            found = store_schema.status(conn)
        pending = found.state is not store_schema.SchemaState.CURRENT
        data: dict[str, object] = {
            "store": shown_url(url),
            "state": found.state.value,
            "revision": found.revision,
            "head": found.head,
        }
        if check:
            _report(data, output)
            if found.state is store_schema.SchemaState.UNKNOWN:
                raise StateError(store_schema.behind_message(url, found))
            raise SystemExit(2 if pending else 0)
        backup = None
        if found.state in (store_schema.SchemaState.BEHIND, store_schema.SchemaState.UNVERSIONED):
            backup = store_schema.backup_sqlite(engine, found.revision or "0.1.0")
        result = store_schema.migrate(engine, url)
        database = sqlite_file(url)  # the file a SQLite URL opens (file: URIs included)
        if database is not None:
            make_private(database)  # 0.1.0 left them readable by every local user
            make_store_folder_private(database)  # and the folder listable
    finally:
        engine.dispose()
    data.update(state="current", revision=result.after, before=result.before)
    data["backup"] = str(backup) if backup else None
    if output != "table":
        emit(data, output)
        return
    was = result.before or "no version (0.1.0)"
    if result.created:
        click.echo(f"created {data['store']} at schema {result.after}")
    elif result.changed:
        click.echo(f"migrated {data['store']} from {was} to {result.after}")
        if backup:
            click.echo(f"backup: {backup}")
    else:
        click.echo(f"{data['store']} is at schema {result.after}: nothing to do")


def _report(data: dict[str, object], output: str) -> None:
    if output != "table":
        emit(data, output)
        return
    was = data["revision"] or "none"
    click.echo(f"{data['store']}: {data['state']} (revision {was}, head {data['head']})")
