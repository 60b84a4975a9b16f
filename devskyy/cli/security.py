"""``devskyy keys|can-i|audit|unblock``: the security manager on the command line.

The CLI acts as the trusted local operator (it holds the store): it may create keys of
any role. A new key is printed alone on stdout, so scripts can capture it
(``KEY=$(devskyy keys create ci --role service)``); everything else goes to stderr.
No other output ever carries a secret. ``can-i`` answers like ``kubectl auth can-i``:
``yes`` (exit 0) or ``no`` (exit 1). ``audit --verify`` exits 1 when the hash chain is
broken (naming the first bad event), when a revision has no audit event, or, with
``--checkpoint FILE``, when the chain lost an event a checkpoint recorded;
``audit checkpoint`` prints ``{seq, hash, at}`` as one JSON line to keep elsewhere.
``keys revoke`` and ``keys rotate`` refuse the last usable admin key unless ``--force``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from devskyy.adapters.clock import SystemClock
from devskyy.adapters.db import open_engine
from devskyy.adapters.state_store import SqlStateStore
from devskyy.cli._common import CliContext, Rfc3339, emit, error_boundary, output_option, table
from devskyy.cli._state import missing_sqlite_file
from devskyy.cli.completion import complete_agents, complete_key_ids
from devskyy.core.audit import Checkpoint, iso, parse_checkpoints
from devskyy.core.timefmt import times_in
from devskyy.errors import DevskyyError
from devskyy.model.manifests import Permission
from devskyy.model.security import EventType
from devskyy.runtime.security import SecurityManager


@contextmanager
def _manager(obj: CliContext) -> Iterator[SecurityManager]:
    engine = open_engine(obj.url())
    try:
        manager = SecurityManager(engine, SystemClock(), SqlStateStore(engine).live)
        try:
            yield manager
        finally:
            manager.close()
    finally:
        engine.dispose()


def _err(message: str) -> None:
    click.echo(message, err=True)


@click.group()
def keys() -> None:
    """Create, list, rotate and revoke API keys."""


@keys.command("create")
@click.argument("name")
@click.option(
    "--role", required=True, help="admin, operator, analyst, service, guest, or an applied Role."
)
@click.option(
    "--expires-days",
    type=click.FloatRange(min=0, min_open=True),
    default=90.0,
    show_default=True,
    help="Days until the key expires.",
)
@click.pass_obj
@error_boundary
def create(obj: CliContext, name: str, role: str, expires_days: float) -> None:
    """Create a key for NAME; print it (once, alone) on stdout."""
    with _manager(obj) as sm:
        new = sm.generate_api_key(name, role, expires_in=expires_days * 86_400.0)
    _err(
        f"created key {new.key_id} for {new.principal} (role {new.role}), "
        f"expires {iso(new.expires)[:19]}Z; "
        "it is shown only this once"
    )
    click.echo(new.key)


_FORCE = click.option(
    "--force",
    is_flag=True,
    help="Also for the last usable admin key (which would leave no admin able to sign in).",
)

_KEY_TIMES = frozenset({"created", "expires", "last_used", "grace_until"})
_AUDIT_TIMES = frozenset({"time", "expires"})
_KEY_HEADERS = ["key id", "principal", "role", "state", "created", "expires", "last used"]


@keys.command("list")
@click.option("--principal", default=None, help="Only this principal's keys.")
@output_option("table", "json", "yaml")
@click.pass_obj
@error_boundary
def list_keys(obj: CliContext, principal: str | None, output: str) -> None:
    """List keys (ids, owners, roles, states; never secrets)."""
    with _manager(obj) as sm:
        rows = times_in(sm.list_api_keys(principal), _KEY_TIMES)
    if output != "table":
        emit(rows, output)
        return
    if not rows:
        click.echo("No API keys.")
        return
    click.echo(
        table(
            [
                [
                    r["key_id"],
                    r["principal"],
                    r["role"],
                    r["state"],
                    r["created"][:19],
                    r["expires"][:19],
                    (r["last_used"] or "-")[:19],
                ]
                for r in rows
            ],
            _KEY_HEADERS,
        )
    )


@keys.command("rotate")
@click.argument("key_id", shell_complete=complete_key_ids)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=86_400.0,
    show_default=True,
    help="Seconds the old key keeps working (0 for a compromised key).",
)
@_FORCE
@click.pass_obj
@error_boundary
def rotate(obj: CliContext, key_id: str, grace: float, force: bool) -> None:
    """Replace KEY_ID with a new key, printed alone on stdout."""
    with _manager(obj) as sm:
        new = sm.rotate_api_key(key_id, grace_seconds=grace, force=force)
    _err(
        f"rotated {key_id} -> {new.key_id} for {new.principal} (role {new.role}); "
        f"the old key works for {grace:g} more second(s)"
    )
    click.echo(new.key)


@keys.command("revoke")
@click.argument("key_id", shell_complete=complete_key_ids)
@_FORCE
@click.pass_obj
@error_boundary
def revoke(obj: CliContext, key_id: str, force: bool) -> None:
    """Revoke KEY_ID at once."""
    with _manager(obj) as sm:
        changed = sm.revoke_api_key(key_id, force=force)
    click.echo(f"key {key_id} revoked" if changed else f"key {key_id} was already revoked")


@click.command("can-i")
@click.argument("principal", shell_complete=complete_agents)
@click.argument("permission", type=click.Choice([p.value for p in Permission]))
@click.argument("resource")
@click.pass_obj
@error_boundary
def can_i(obj: CliContext, principal: str, permission: str, resource: str) -> None:
    """Print yes (exit 0) or no (exit 1): may PRINCIPAL do PERMISSION on RESOURCE?"""
    with _manager(obj) as sm:
        decision = sm.explain(principal, resource, permission)
    click.echo("yes" if decision.allowed else "no")
    _err(decision.matched_rule or decision.reason)
    if not decision.allowed:
        sys.exit(1)


_AUDIT_HEADERS = ["seq", "time", "actor", "type", "resource", "outcome"]


@click.group(invoke_without_command=True)
@click.option("--agent", default=None, help="Only events by this actor.")
@click.option("--type", "event_type", type=click.Choice([e.value for e in EventType]), default=None)
@click.option(
    "--since",
    type=Rfc3339(),
    default=None,
    help="Only events at or after this RFC 3339 time (UTC when it has no offset).",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=100, show_default=True, help="At most 1000."
)
@click.option(
    "--verify",
    is_flag=True,
    help="Check the hash chain, and that every revision has its event; exit 1 if not.",
)
@click.option(
    "--checkpoint",
    "checkpoints",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="With --verify: checkpoints kept outside the store (`audit checkpoint` output, or "
    "a serve/watch log); exit 1 naming the missing events if the chain lost one.",
)
@output_option("table", "json", "yaml")
@click.pass_context
@error_boundary
def audit(
    ctx: click.Context,
    *,
    agent: str | None,
    event_type: str | None,
    since: datetime | None,
    limit: int,
    verify: bool,
    checkpoints: tuple[Path, ...],
    output: str,
) -> None:
    """Show recent security events, or verify the tamper-evident chain."""
    if ctx.invoked_subcommand is not None:
        return
    obj: CliContext = ctx.obj
    if checkpoints and not verify:
        raise click.UsageError("--checkpoint goes with --verify")
    marks = _read_checkpoints(checkpoints)
    if missing_sqlite_file(obj.url()):
        # Not "intact, 0 events" (and no new empty store) when run from the wrong folder.
        if verify:
            raise DevskyyError(
                f"no state store at {obj.url()}: nothing to verify "
                "(run from the folder that holds .devskyy/, or pass --state)"
            )
        if output != "table":
            emit([], output)
        else:
            click.echo("No audit events.")
        return
    with _manager(obj) as sm:
        if verify:
            report = sm.verify_audit_log(marks)
            _print_report(report.ok, report.checked, report.head_hash, report.problem, output)
            if not report.ok:
                sys.exit(1)
            return
        events = sm.get_audit_log(agent, event_type, since, limit)
    if output != "table":
        emit(times_in(events, _AUDIT_TIMES), output)
        return
    if not events:
        click.echo("No audit events.")
        return
    click.echo(
        table(
            [
                [
                    str(e["seq"]),
                    e["time"][:23],
                    e["actor"],
                    e["event_type"],
                    e["resource"],
                    e["outcome"],
                ]
                for e in events
            ],
            _AUDIT_HEADERS,
        )
    )


def _read_checkpoints(files: tuple[Path, ...]) -> tuple[Checkpoint, ...]:
    marks: list[Checkpoint] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise DevskyyError(f"cannot read checkpoint file {file}: {reason}") from None
        try:
            marks.extend(parse_checkpoints(text, str(file)))
        except ValueError as exc:
            raise DevskyyError(str(exc)) from None
    return tuple(marks)


@audit.command("checkpoint")
@output_option("json", "yaml", "table")
@click.pass_obj
@error_boundary
def checkpoint(obj: CliContext, output: str) -> None:
    """Print the chain's head as {seq, hash, at}: one JSON line to keep outside the store.

    Later, `devskyy audit --verify --checkpoint FILE` fails (exit 1, naming the missing
    events) when the newest events, the head row or the whole table were deleted.
    """
    if missing_sqlite_file(obj.url()):
        raise DevskyyError(
            f"no state store at {obj.url()} (run from the folder that holds .devskyy/, "
            "or pass --state)"
        )
    with _manager(obj) as sm:
        mark = sm.audit_checkpoint().to_dict()
    if output == "json":
        click.echo(json.dumps(mark, sort_keys=True))
    elif output == "yaml":
        emit(mark, output)
    else:
        click.echo(f"checkpoint: event {mark['seq']}, hash {mark['hash']}, at {mark['at']}")


def _print_report(ok: bool, checked: int, head: str, problem: str, output: str) -> None:
    data: dict[str, Any] = {"ok": ok, "checked": checked, "head_hash": head, "problem": problem}
    if output != "table":
        emit(data, output)
    elif ok:
        click.echo(f"audit log intact: {checked} event(s), head {head}")
    else:
        click.echo(f"audit log broken: {problem}")


@click.command()
@click.argument("principal")
@click.pass_obj
@error_boundary
def unblock(obj: CliContext, principal: str) -> None:
    """Lift threat-detection blocks on a principal, key id, or subject (source:ADDR)."""
    with _manager(obj) as sm:
        lifted = sm.unblock(principal)
    if not lifted:
        click.echo(f"nothing blocked for {principal}")
        return
    for subject in lifted:
        click.echo(f"unblocked {subject}")
