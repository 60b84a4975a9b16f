"""``devskyy plan | apply | history | rollback``: the declarative loop from the command line.

Each command parses its options, calls the reconciler once and prints the result.
``plan --detailed-exitcode`` follows Terraform: 0 no changes, 2 changes pending,
1 error (a usage error too, so that a typo in a CI script never reads as "changes").
``apply --dry-run`` prints exactly the plan that apply would run and writes nothing
(not even a new, empty state file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from devskyy.adapters.state_store import SqlStateStore, StateStore
from devskyy.cli._common import (
    CliContext,
    emit,
    error_boundary,
    output_option,
    problems_reported,
    snake_keys,
    table,
    use_color,
)
from devskyy.cli._state import open_store
from devskyy.core.plan_text import counts_text, plan_text, revision_text
from devskyy.core.timefmt import times_in
from devskyy.errors import DevskyyError
from devskyy.model.plan import Plan, Revision
from devskyy.runtime.reconciler import ApplyResult, Reconciler

_COLOURS = {"create": "green", "update": "yellow", "delete": "red", "orphan": "cyan"}


def _style(text: str, action: str) -> str:
    colour = _COLOURS.get(action)
    return click.style(text, fg=colour) if colour and use_color() else text


_path_argument = click.argument(
    "path", required=False, default="manifests/", type=click.Path(path_type=str)
)


def _reconciler(store: StateStore) -> Reconciler:
    """A reconciler whose revisions commit with their audit event (SQL stores)."""
    return Reconciler(store, audit_actor="cli" if isinstance(store, SqlStateStore) else None)


def _plan_json(plan: Plan, source: str, live_revision: int | None) -> dict[str, Any]:
    data = {"source": source, "liveRevision": live_revision, **plan.to_json()}
    return dict(snake_keys(data))  # the CLI's one style; manifest documents keep theirs


def _revision_json(revision: Revision) -> dict[str, Any]:
    return dict(times_in(snake_keys(revision.to_json()), frozenset({"created_at"})))


def _result_json(result: ApplyResult, source: str) -> dict[str, Any]:
    before = result.revision.number - 1 if result.revision else result.live_revision
    return {
        "plan": _plan_json(result.plan, source, before or None),
        "dry_run": result.dry_run,
        "revision": _revision_json(result.revision) if result.revision else None,
        "live_revision": result.live_revision,
    }


class _PlanUsageError(click.UsageError):
    exit_code = 1


class _PlanCommand(click.Command):
    """``plan``: a usage error exits 1, never 2 (which means "changes pending")."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _PlanUsageError(exc.format_message(), exc.ctx) from None


@click.command(cls=_PlanCommand)
@_path_argument
@click.option("--prune", is_flag=True, help="Also delete live resources missing from PATH.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.",
)
@output_option("table", "json", "yaml")
@click.pass_obj
@error_boundary
def plan(obj: CliContext, path: str, prune: bool, detailed_exitcode: bool, output: str) -> None:
    """Show what apply would change to make live state match PATH [default: manifests/]."""
    tree = Path(path)
    with open_store(obj.url(), write=False) as store, problems_reported(path, output):
        the_plan = Reconciler(store).plan_tree(tree, prune=prune)
        current = store.current_revision()
    if output != "table":
        emit(_plan_json(the_plan, path, current), output)
    else:
        click.echo(plan_text(the_plan, path, current, _style))
    if detailed_exitcode and the_plan.has_changes:
        raise SystemExit(2)


@click.command()
@_path_argument
@click.option("--prune", is_flag=True, help="Also delete live resources missing from PATH.")
@click.option(
    "--dry-run", is_flag=True, help="Print the plan that would be applied; write nothing."
)
@output_option("table", "json", "yaml")
@click.pass_obj
@error_boundary
def apply(obj: CliContext, path: str, prune: bool, dry_run: bool, output: str) -> None:
    """Validate PATH [default: manifests/] and make live state match it, as one revision."""
    tree = Path(path)
    with open_store(obj.url(), write=not dry_run) as store, problems_reported(path, output):
        reconciler = _reconciler(store)
        result = reconciler.apply_tree(tree, prune=prune, dry_run=dry_run)
    if output != "table":
        emit(_result_json(result, path), output)
        return
    if not result.plan.has_changes:
        click.echo(plan_text(result.plan, path, result.live_revision, _style))
        return
    before = result.revision.number - 1 if result.revision else result.live_revision
    click.echo(plan_text(result.plan, path, before or None, _style))
    click.echo("")
    if result.revision is None:
        click.echo("Dry run: nothing was applied.")
    else:
        click.echo(f"Applied revision {result.revision.number} ({counts_text(result.plan)}).")


def _commit_text(rev: Revision) -> str:
    if rev.git_commit is None:
        return "-"
    return rev.git_commit[:12] + ("-dirty" if rev.git_dirty else "")


def _changes_text(rev: Revision) -> str:
    s = rev.summary
    return f"+{s.get('created', 0)} ~{s.get('updated', 0)} -{s.get('deleted', 0)}"


@click.command()
@output_option("table", "json", "yaml")
@click.pass_obj
@error_boundary
def history(obj: CliContext, output: str) -> None:
    """List applied revisions, oldest first."""
    with open_store(obj.url(), write=False) as store:
        revisions = store.revisions()
    if output != "table":
        emit([_revision_json(r) for r in revisions], output)
        return
    if not revisions:
        click.echo("No revisions yet.")
        return
    rows = [
        [
            str(r.number),
            r.to_json()["createdAt"],
            r.source,
            _commit_text(r),
            _changes_text(r),
            f"rollback of {r.rollback_of}" if r.rollback_of is not None else "",
        ]
        for r in revisions
    ]
    headers = ["revision", "created", "source", "commit", "changes", "note"]
    click.echo(table(rows, headers))


@click.command()
@click.argument("rev", type=click.IntRange(min=1))
@click.option("--dry-run", is_flag=True, help="Print the plan of the rollback; write nothing.")
@output_option("table", "json", "yaml")
@click.pass_obj
@error_boundary
def rollback(obj: CliContext, rev: int, dry_run: bool, output: str) -> None:
    """Re-apply revision REV as a new revision (deleting what REV did not have)."""
    with open_store(obj.url(), write=False) as store:
        if store.current_revision() is None:
            raise DevskyyError(f"revision {rev} does not exist")
    with open_store(obj.url(), write=not dry_run) as store:
        reconciler = _reconciler(store)
        result = reconciler.rollback(rev, dry_run=dry_run)
    source = revision_text(rev)
    if output != "table":
        emit(_result_json(result, source), output)
        return
    if not result.plan.has_changes:
        click.echo(f"No changes. Live state already matches revision {rev}.")
        return
    before = result.revision.number - 1 if result.revision else result.live_revision
    click.echo(plan_text(result.plan, source, before or None, _style))
    click.echo("")
    if result.revision is None:
        click.echo("Dry run: nothing was applied.")
    else:
        click.echo(
            f"Rolled back to revision {rev} as revision {result.revision.number} "
            f"({counts_text(result.plan)})."
        )
