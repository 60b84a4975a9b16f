"""``devskyy validate [PATH]`` and ``devskyy schema [KIND]``.

``validate`` prints nothing but a one-line summary on stdout for a valid tree (exit 0).
For an invalid tree every problem goes to stderr, one line each
(``file:line:column: json.path: message``, the format editors' problem matchers read),
then a count; the exit code is 1. ``-o json`` (or ``yaml``) prints one object on stdout
instead (``path``, ``valid``, ``counts``, ``problems``) with the same exit codes;
``-o text`` is the old name of the default ``table``.

``schema`` prints the JSON Schema of one kind (exactly the file in ``schemas/``), or of
every kind as one JSON object keyed by kind.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from devskyy.adapters import safe_files
from devskyy.cli._common import emit, error_boundary, output_option
from devskyy.cli.completion import complete_schema_kinds
from devskyy.errors import DevskyyError
from devskyy.model.manifests import KINDS
from devskyy.model.schemas import render, schema_for
from devskyy.runtime.manifests import summarize, validate_tree


@click.command()
@click.argument("path", default="manifests/", required=False)
@click.option(
    "--check-agents",
    is_flag=True,
    help="Also import each agent's class and check spec.config against it.",
)
@output_option("table", "json", "yaml", "text")
@error_boundary
def validate(path: str, check_agents: bool, output: str) -> None:
    """Check the manifests below PATH (default manifests/) and print every problem.

    A valid tree prints a one-line summary on stdout. Problems go to stderr, one per
    line as FILE:LINE:COLUMN: JSON.PATH: MESSAGE, then their count. Module prefixes
    allowed besides devskyy.agents come from DEVSKYY_ALLOWED_MODULES (comma-separated).
    With --check-agents each agent's module is imported (as apply's runtime will) and a
    missing class or a wrong spec.config key is reported too: use it in CI.
    Exit code 0 when the tree is valid, 1 otherwise.
    """
    result = validate_tree(path, check_agents=check_agents)
    summary = summarize(result.resources)
    if output in ("json", "yaml"):
        report = {
            "path": path,
            "valid": result.ok,
            "counts": summary.counts if result.ok else {},
            "problems": [p.to_dict() for p in result.problems],
        }
        if output == "json":  # in this order (emit sorts keys)
            click.echo(json.dumps(report, indent=2))
        else:
            emit(report, output)
    elif result.ok:
        click.echo(f"{path}: {summary}: valid")
    else:
        for problem in result.problems:
            click.echo(str(problem), err=True)
        n = len(result.problems)
        click.echo(f"{path}: {n} problem{'' if n == 1 else 's'}", err=True)
    if not result.ok:
        raise SystemExit(1)


@click.command()
@click.argument("kind", required=False, shell_complete=complete_schema_kinds)
@click.option(
    "--write",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    metavar="DIR",
    help="Write KIND's schema (default: every kind's) as DIR/<kind>.json instead.",
)
@error_boundary
def schema(kind: str | None, folder: Path | None) -> None:
    """Print the JSON Schema of KIND (Agent, Workflow, Role, RoleBinding), or of all.

    With --write DIR the files are written as in this repository's schemas/ folder
    (agent.json, workflow.json…), so a repository of manifests elsewhere can point its
    editor modelines at them: # yaml-language-server: $schema=../../schemas/agent.json
    """
    found = _kind(kind) if kind is not None else None
    if folder is not None:
        kinds = [found] if found is not None else list(KINDS)
        for name in kinds:
            target = folder / f"{name.lower()}.json"
            try:
                # Never through a link: a checkout may plant schemas/agent.json -> ~/.bashrc.
                root, below = safe_files.anchor(folder)
                safe_files.write_text(root, below / target.name, render(name), make_parents=True)
            except safe_files.UnsafeWrite as exc:
                raise DevskyyError(f"refused to write {target}: {exc.reason}") from None
            except OSError as exc:
                raise DevskyyError(f"cannot write {target}: {exc.strerror or exc}") from None
            click.echo(f"wrote {target}")
        return
    if found is None:
        everything = {name: schema_for(name) for name in KINDS}
        click.echo(json.dumps(everything, indent=2, sort_keys=True))
        return
    click.echo(render(found), nl=False)


def _kind(text: str) -> str:
    by_lower = {name.lower(): name for name in KINDS}
    found = by_lower.get(text.lower())
    if found is None:
        raise DevskyyError(f"unknown kind {text!r}; choose one of {', '.join(KINDS)}")
    return found
