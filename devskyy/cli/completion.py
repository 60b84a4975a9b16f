"""Shell completion: ``devskyy completion bash|zsh|fish`` and completers over live state.

The scripts are click's own (the ``_DEVSKYY_COMPLETE`` protocol); this module adds what
click cannot know: kinds, and the names that exist in the store in force (``--state`` or
``DEVSKYY_STATE_URL``, else ``./.devskyy/state.db``): agents, workflows, run ids and key
ids. A completer only reads: a SQLite file that does not exist completes nothing (no store
is created by pressing TAB), and any error completes nothing rather than printing into
the shell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem, get_completion_class

from devskyy.model.manifests import KINDS

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_DEVSKYY_COMPLETE"
# The plural each kind is listed under (``get agents``), as kubectl completes them.
KIND_WORDS = {
    "agents": "Agent",
    "workflows": "Workflow",
    "roles": "Role",
    "rolebindings": "RoleBinding",
}
Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def _state_url(ctx: click.Context) -> str | None:
    """The state URL the command would use, or None when there is no store to read."""
    from devskyy.adapters.store_url import resolve_state_url  # noqa: PLC0415 - when used
    from devskyy.cli._state import missing_sqlite_file  # noqa: PLC0415

    root = ctx.find_root()
    url = resolve_state_url(root.params.get("state_url"), Path.cwd())
    return None if missing_sqlite_file(url) else url


@contextmanager
def _engine(ctx: click.Context) -> Iterator[Any]:
    from devskyy.adapters.db import open_engine  # noqa: PLC0415

    url = _state_url(ctx)
    if url is None:
        yield None
        return
    engine = open_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def _quiet(fn: Callable[[click.Context, str], list[CompletionItem]]) -> Completer:
    """A completer that completes nothing instead of failing (TAB must never raise)."""

    def complete(
        ctx: click.Context, _param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        try:
            return fn(ctx, incomplete)
        except Exception:  # a broken store must not break the shell
            return []

    return complete


def _live_names(ctx: click.Context, kind: str) -> list[str]:
    from devskyy.adapters.state_store import SqlStateStore  # noqa: PLC0415

    with _engine(ctx) as engine:
        if engine is None:
            return []
        return sorted(m.name for m in SqlStateStore(engine).live().by_kind(kind))


def _items(names: list[str], incomplete: str, help_text: str | None = None) -> list[CompletionItem]:
    return [CompletionItem(n, help=help_text) for n in names if n.startswith(incomplete)]


def _kinds(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    if "/" in incomplete:  # kubectl's KIND/NAME form: agent/sc<TAB>
        from devskyy.cli.inspect import resolve_kind  # noqa: PLC0415 - avoids a cycle

        kind_text = incomplete.partition("/")[0]
        kind = resolve_kind(kind_text)
        return _items([f"{kind_text}/{n}" for n in _live_names(ctx, kind)], incomplete)
    return _items(sorted(KIND_WORDS), incomplete)


def _kind_names(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    from devskyy.cli.inspect import resolve_kind  # noqa: PLC0415 - avoids a cycle

    kind_text = ctx.params.get("kind")
    if not kind_text or "/" in kind_text:
        return []
    return _items(_live_names(ctx, resolve_kind(kind_text)), incomplete)


def _schema_kinds(_ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(k) for k in KINDS if k.lower().startswith(incomplete.lower())]


def _agents(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    return _items(_live_names(ctx, "Agent"), incomplete, "agent")


def _workflows(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    return _items(_live_names(ctx, "Workflow"), incomplete, "workflow")


def _run_ids(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    from devskyy.adapters.run_store import SqlRunStore  # noqa: PLC0415

    with _engine(ctx) as engine:
        if engine is None:
            return []
        records = SqlRunStore(engine).list_runs(limit=200)
    return [
        CompletionItem(r.id, help=f"{r.workflow} {r.status.value}")
        for r in records
        if r.id.startswith(incomplete)
    ]


def _run_ids_or_paths(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """Run ids, or files once the word looks like a path (``restore ./backup``)."""
    if "/" in incomplete or incomplete.startswith("."):
        return [CompletionItem(incomplete, type="file")]
    return _run_ids(ctx, incomplete) or [CompletionItem(incomplete, type="file")]


def _key_ids(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    from devskyy.adapters.security_store import SqlSecurityStore  # noqa: PLC0415

    with _engine(ctx) as engine:
        if engine is None:
            return []
        keys = SqlSecurityStore(engine).list_keys()
    return [
        CompletionItem(k.key_id, help=f"{k.principal} ({k.role})")
        for k in sorted(keys, key=lambda k: k.key_id)
        if k.revoked is None and k.key_id.startswith(incomplete)
    ]


complete_kinds = _quiet(_kinds)
complete_kind_names = _quiet(_kind_names)
complete_schema_kinds = _quiet(_schema_kinds)
complete_agents = _quiet(_agents)
complete_workflows = _quiet(_workflows)
complete_run_ids = _quiet(_run_ids)
complete_run_ids_or_paths = _quiet(_run_ids_or_paths)
complete_key_ids = _quiet(_key_ids)


def script(shell: str, prog_name: str = "devskyy") -> str:
    """The completion script click generates for ``shell``."""
    from devskyy.cli import main  # noqa: PLC0415 - the group imports this module lazily

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - SHELLS are all click's own
        raise click.UsageError(f"unsupported shell {shell!r}")
    return cls(main, {}, prog_name, COMPLETE_VAR).source()


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    bash:  eval "$(devskyy completion bash)"        (in ~/.bashrc)
    zsh:   eval "$(devskyy completion zsh)"         (in ~/.zshrc)
    fish:  devskyy completion fish > ~/.config/fish/completions/devskyy.fish
    """
    click.echo(script(shell), nl=False)
