"""The ``devskyy`` command line: a thin translation layer over library calls.

Subcommands are imported lazily (only the one you run is loaded), which keeps
``devskyy --help`` fast. Each command module exposes one click command or group;
``COMMANDS`` maps the command name to ``module:attribute``. Errors are mapped to exit
codes in one place, ``devskyy.cli._common.error_boundary``: 0 ok, 1 error, 2 changes
pending (``plan --detailed-exitcode``).
"""

from __future__ import annotations

import gc
import importlib
from typing import Any

import click
from click.shell_completion import CompletionItem

from devskyy.cli._common import CliContext
from devskyy.extras import missing_extra_message

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module:attribute, one-line help shown by --help without importing it)
    "validate": ("devskyy.cli.validate:validate", "Check manifests; print every problem."),
    "plan": ("devskyy.cli.declarative:plan", "Show what apply would change."),
    "apply": ("devskyy.cli.declarative:apply", "Make live state match the manifests."),
    "history": ("devskyy.cli.declarative:history", "List applied revisions."),
    "rollback": ("devskyy.cli.declarative:rollback", "Re-apply a stored revision."),
    "migrate": ("devskyy.cli.migrate:migrate", "Upgrade the state store's schema."),
    "get": ("devskyy.cli.inspect:get", "List applied resources of a kind."),
    "describe": ("devskyy.cli.inspect:describe", "Show one applied resource."),
    "graph": ("devskyy.cli.inspect:graph", "Agent dependencies and workflow DAGs."),
    "schema": ("devskyy.cli.validate:schema", "Print the JSON Schema of a kind."),
    "run": ("devskyy.cli.runs:run", "Run a workflow."),
    "runs": ("devskyy.cli.runs:runs", "List, show and resume workflow runs."),
    "schedules": ("devskyy.cli.schedules:schedules", "Next and past fires of workflow schedules."),
    "discover": ("devskyy.cli.discover:discover", "Write Agent manifests for agent classes."),
    "keys": ("devskyy.cli.security:keys", "Create, list, rotate and revoke API keys."),
    "can-i": ("devskyy.cli.security:can_i", "Ask whether a principal may do something."),
    "audit": ("devskyy.cli.security:audit", "Read or verify the audit log."),
    "unblock": ("devskyy.cli.security:unblock", "Lift a threat-detection block."),
    "restore": ("devskyy.cli.fixes:restore", "Restore files from a fixer backup."),
    "serve": ("devskyy.cli.serve:serve", "Serve the HTTP API."),
    "watch": ("devskyy.cli.watch:watch", "Apply manifests continuously (GitOps daemon)."),
    "worker": ("devskyy.cli.worker:worker", "Start a Dask worker for --runner dask."),
    "completion": (
        "devskyy.cli.completion:completion",
        "Print a bash, zsh or fish completion script.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when run (click's lazy-loading recipe)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        if _only_listing(ctx):
            return click.Command(cmd_name, help=entry[1], short_help=entry[1])
        # Everything else, shell completion included, needs the real command: its
        # subcommands, options and argument completers (a stub completes nothing).
        module_name, attr = entry[0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            message = missing_extra_message(exc)
            if message is None:
                raise
            if ctx.resilient_parsing:  # completing: offer nothing, print nothing
                return None
            click.echo(f"error: devskyy {cmd_name}: {message}", err=True)
            ctx.exit(1)
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        _started(ctx)
        return command

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        # Completing a command name needs only names and one-line helps: no imports.
        ctx.meta["devskyy.listing"] = True
        try:
            return super().shell_complete(ctx, incomplete)
        finally:
            ctx.meta["devskyy.listing"] = False


def _only_listing(ctx: click.Context) -> bool:
    """True while click lists command names (the top-level help, or completing a name)."""
    return bool(ctx.meta.get("devskyy.listing"))


def _started(ctx: click.Context) -> None:
    """The command's modules are imported: the process's start is over (see ``_Main``)."""
    root = ctx.find_root().command
    if isinstance(root, _Main) and root.starting:
        root.starting = False
        gc.freeze()  # what the imports made lives as long as the process: never walk it again
        gc.enable()


class _Main(LazyGroup):
    """The ``devskyy`` group; called as the process's entry point (the console script,
    ``python -m devskyy.cli``; click's CliRunner calls ``main`` instead) it keeps the
    cyclic garbage collector off while the command's modules import.

    Importing allocates a great many objects that live as long as the process does
    (classes, functions, SQLAlchemy's and pydantic's structures): the collector would walk
    them again and again without finding garbage, and every later full collection would
    walk them once more. Once the command is imported they are frozen (``gc.freeze``) and
    collection resumes: ``devskyy run``'s first step starts ~50 ms sooner and its whole
    run is ~0.15 s shorter (``benchmarks/bench_scan.py --only cli``).
    """

    starting = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not gc.isenabled():  # an embedder keeps the collector off: leave it so
            return super().__call__(*args, **kwargs)
        self.starting = True
        gc.disable()
        try:
            return super().__call__(*args, **kwargs)
        finally:
            if self.starting:  # ended before a command was imported (--help, a typo)
                self.starting = False
                gc.enable()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        ctx.meta["devskyy.listing"] = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            ctx.meta["devskyy.listing"] = False


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--state",
    "state_url",
    envvar="DEVSKYY_STATE_URL",
    default=None,
    metavar="URL",
    show_envvar=True,
    help="SQLAlchemy URL of the state store [default: sqlite in ./.devskyy/state.db].",
)
@click.version_option(package_name="devskyy")
@click.pass_context
def main(ctx: click.Context, state_url: str | None) -> None:
    """devskyy: a declarative, GitOps-driven runtime for multi-agent systems."""
    ctx.obj = CliContext(state_url=state_url)


def run(*args: Any) -> None:  # pragma: no cover - console entry convenience
    main(*args)
