"""``devskyy discover PATH``: write Agent manifests for the agent classes found in source.

Thin over ``devskyy.runtime.discovery``: the files are parsed, never imported.
"""

from __future__ import annotations

from pathlib import Path

import click

from devskyy.cli._common import error_boundary
from devskyy.runtime.discovery import discover as find
from devskyy.runtime.discovery import render, write_manifests


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--output-dir",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("manifests/agents"),
    show_default=True,
    help="Folder to write the Agent manifests to.",
)
@click.option("--force", is_flag=True, help="Overwrite manifests that already exist.")
@click.option("--dry-run", is_flag=True, help="Print the manifests instead of writing them.")
@error_boundary
def discover(path: Path, out_dir: Path, force: bool, dry_run: bool) -> None:
    """Find BaseAgent subclasses in *_v2.py and *_agent.py files under PATH.

    Writes one Agent manifest per class (name from the class, module from the file's
    package path, capabilities from a literal ``capabilities`` class attribute).
    """
    result = find(path)
    for note in result.skipped:
        click.echo(f"skipped: {note}", err=True)
    if not result.found:
        click.echo(f"no BaseAgent subclasses found in *_v2.py or *_agent.py files under {path}")
        return
    if dry_run:
        click.echo("---\n".join(render(f.manifest) for f in result.found), nl=False)
        return
    written = write_manifests(result.found, out_dir, force=force)
    for target, found in zip(written, result.found, strict=True):
        click.echo(f"wrote {target} ({found.manifest.name}: {found.manifest.spec.module})")
    outside = sorted(
        {f.manifest.spec.module.split(".")[0].split(":")[0] for f in result.found} - {"devskyy"}
    )
    if outside:
        click.echo(
            f"note: to apply them, allow their packages: "
            f"DEVSKYY_ALLOWED_MODULES={','.join(outside)}",
            err=True,
        )
