"""``devskyy restore RUN_ID_OR_BACKUP_PATH``: undo a fixer run, byte for byte.

Given a folder, it is read as a fixer backup (``manifest.json`` + ``files/``). Given a
run id, the backup path is taken from the output of that run's fix step in the run
store or, when the step never finished (killed mid-fix), from the backup whose manifest
records that run under the state dir. Every backed-up file is written back with its
original bytes and mode, after each one's sha256 is checked; nothing is written when any
check fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import SqlRunStore
from devskyy.adapters.store_url import state_dir
from devskyy.agents.codecheck import backup
from devskyy.cli._common import CliContext, emit, error_boundary, output_option, table
from devskyy.cli._state import missing_sqlite_file
from devskyy.cli.completion import complete_run_ids_or_paths
from devskyy.errors import DevskyyError, NotFound


def _backup_of_run(url: str, run_id: str) -> Path:
    if missing_sqlite_file(url):
        raise NotFound(f'run "{run_id}" not found (no state store at {url})')
    engine = open_engine(url)
    try:
        record = SqlRunStore(engine).get(run_id)
    finally:
        engine.dispose()
    paths = [
        str(step.output["backup_path"])
        for step in record.steps
        if step.output and step.output.get("backup_path")
    ]
    if not paths:
        # A fix step killed mid-way never recorded its output; its backup names the run.
        paths = [str(p) for p in backup.of_run(state_dir(url), run_id)]
    if not paths:
        raise NotFound(
            f'run "{run_id}" made no fixer backup (its fix step was skipped, failed, '
            "was a dry run, or ran without create_backup)"
        )
    if len(paths) > 1:
        raise DevskyyError(
            f'run "{run_id}" made {len(paths)} backups; restore one by path: ' + ", ".join(paths)
        )
    return Path(paths[0])


def restore_target(url: str, target: str, *, force: bool = False) -> dict[str, Any]:
    """Restore from a backup folder or a run id; what was written back."""
    path = Path(target)
    if not path.is_dir():
        path = _backup_of_run(url, target)
    try:
        restored = backup.restore(path, force=force)
    except (backup.BackupError, OSError, ValueError) as exc:
        raise DevskyyError(f"cannot restore {path}: {exc}") from None
    return {"backup_path": restored.backup_path, "root": restored.root, "files": restored.files}


@click.command("restore")
@click.argument("target", metavar="RUN_ID_OR_BACKUP_PATH", shell_complete=complete_run_ids_or_paths)
@click.option("--force", is_flag=True, help="Also overwrite files edited since the fix.")
@output_option("table", "json", "yaml")
@click.pass_obj
@error_boundary
def restore(obj: CliContext, target: str, force: bool, output: str) -> None:
    """Restore the files a fixer run changed, from its backup.

    A file edited since the fix is not overwritten (nothing is restored) unless --force.
    """
    result = restore_target(obj.url(), target, force=force)
    if output != "table":
        emit(result, output)
        return
    click.echo(f"Restored {len(result['files'])} file(s) under {result['root']}")
    click.echo(f"from {result['backup_path']}")
    if result["files"]:
        click.echo(table([[f] for f in result["files"]], ["file"]))
