"""``devskyy get | describe | graph``: read applied (live) state, like kubectl.

Kinds are accepted as kubectl does: singular, plural, any case, and short names
(``agent``, ``Agents``, ``wf``, ``rb``). ``get KIND -o json`` prints the applied
resources as a JSON list of canonical documents.
"""

from __future__ import annotations

from typing import Any

import click

from devskyy.cli._common import CliContext, emit, error_boundary, output_option, table
from devskyy.cli._state import open_store
from devskyy.cli.completion import complete_kind_names, complete_kinds
from devskyy.core.graph import to_dot, to_mermaid
from devskyy.errors import DevskyyError, NotFound
from devskyy.model.manifests import Agent, Manifest, Role, RoleBinding, Workflow
from devskyy.model.resources import ResourceKey, document

_ALIASES = {
    "Agent": ("agent", "agents", "ag"),
    "Workflow": ("workflow", "workflows", "wf"),
    "Role": ("role", "roles"),
    "RoleBinding": ("rolebinding", "rolebindings", "rb", "role-binding", "role-bindings"),
}
_PLURAL = {
    "Agent": "agents",
    "Workflow": "workflows",
    "Role": "roles",
    "RoleBinding": "rolebindings",
}


def resolve_kind(text: str) -> str:
    """The canonical kind for ``text`` (``agents`` → ``Agent``), or a DevskyyError."""
    wanted = text.strip().lower()
    for kind, aliases in _ALIASES.items():
        if wanted in aliases:
            return kind
    raise DevskyyError(
        f'unknown kind "{text}" (expected one of: agents, workflows, roles, rolebindings)'
    )


def kind_and_name(kind: str, name: str | None) -> tuple[str, str | None]:
    """``agent/scanner`` (kubectl's form) or ``agent scanner``: the kind and the name."""
    if "/" not in kind:
        return resolve_kind(kind), name
    kind_text, _, own = kind.partition("/")
    if name is not None:
        raise DevskyyError(f'give "{kind}" or "{kind_text} {name}", not both')
    if not own:
        raise DevskyyError(f'"{kind}" names no resource (KIND/NAME, as agent/scanner)')
    return resolve_kind(kind_text), own


def _list(values: list[str]) -> str:
    return ",".join(values) if values else "-"


def _row(manifest: Manifest) -> list[str]:
    if isinstance(manifest, Agent):
        s = manifest.spec
        return [
            manifest.name,
            s.priority.value,
            str(s.replicas),
            _list(s.capabilities),
            _list(s.dependencies),
        ]
    if isinstance(manifest, Workflow):
        w = manifest.spec
        return [manifest.name, w.priority.value, str(len(w.steps)), _list(sorted(w.params))]
    if isinstance(manifest, Role):
        rules = [
            f"{','.join(r.resources)}={','.join(p.value for p in r.permissions)}"
            for r in manifest.spec.rules
        ]
        return [manifest.name, "; ".join(rules)]
    b = manifest.spec
    subjects = [f"{s.kind}/{s.name}" for s in b.subjects]
    return [manifest.name, b.role, _list(subjects), str(len(b.resources))]


_HEADERS = {
    "Agent": ["name", "priority", "replicas", "capabilities", "dependencies"],
    "Workflow": ["name", "priority", "steps", "params", "next-fire"],
    "Role": ["name", "rules"],
    "RoleBinding": ["name", "role", "subjects", "extra-rules"],
}


@click.command()
@click.argument("kind", shell_complete=complete_kinds)
@click.argument("name", required=False, shell_complete=complete_kind_names)
@output_option("table", "json", "yaml")
@click.pass_obj
@error_boundary
def get(obj: CliContext, kind: str, name: str | None, output: str) -> None:
    """List applied resources of KIND (agents, workflows, roles, rolebindings).

    KIND NAME or KIND/NAME (agent/scanner) shows only that one; with -o json|yaml it
    prints that resource itself, as kubectl does, rather than a one-item list.
    """
    resolved, name = kind_and_name(kind, name)
    with open_store(obj.url(), write=False) as store:
        items = list(store.live().by_kind(resolved))
    if name is not None:
        items = [m for m in items if m.name == name]
        if not items:
            raise NotFound(f'{resolved} "{name}" not found')
    if output != "table":
        documents = [document(m) for m in items]
        emit(documents[0] if name is not None else documents, output)
        return
    if not items:
        click.echo(f"No {_PLURAL[resolved]} in live state.")
        return
    rows = [_row(m) for m in items]
    if resolved == "Workflow":
        from devskyy.adapters.clock import SystemClock  # noqa: PLC0415 - only for workflows

        now = SystemClock().now()  # one instant for the whole table
        rows = [[*row, _next_fire(m, now)] for row, m in zip(rows, items, strict=True)]
    click.echo(table(rows, _HEADERS[resolved]))


def _next_fire(manifest: Manifest, now: float) -> str:
    """The workflow's next scheduled run after ``now`` (RFC 3339 Z), ``-`` without schedules."""
    from devskyy.cli.schedules import next_fire_text  # noqa: PLC0415

    assert isinstance(manifest, Workflow)
    try:
        return next_fire_text(manifest, now)
    except ModuleNotFoundError:  # croniter comes with devskyy[watch]
        return "?" if manifest.spec.schedules else "-"


def _yaml_block(data: Any, indent: int) -> list[str]:
    import yaml  # noqa: PLC0415 - only describe needs it; keeps the import light

    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return [" " * indent + line for line in text.rstrip("\n").splitlines()]


def _mapping_text(values: dict[str, str]) -> str:
    if not values:
        return "<none>"
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items()))


@click.command()
@click.argument("kind", shell_complete=complete_kinds)
@click.argument("name", required=False, shell_complete=complete_kind_names)
@output_option("table", "json", "yaml")
@click.pass_obj
@error_boundary
def describe(obj: CliContext, kind: str, name: str | None, output: str) -> None:
    """Show one applied resource in full: KIND NAME or KIND/NAME (agent/scanner)."""
    resolved, name = kind_and_name(kind, name)
    if name is None:
        raise click.UsageError("Missing argument 'NAME' (describe KIND NAME or KIND/NAME).")
    with open_store(obj.url(), write=False) as store:
        manifest = store.live().get(resolved, name)
        revision = store.resource_revision(ResourceKey(resolved, name))
    if manifest is None:
        raise NotFound(f'{resolved} "{name}" not found')
    doc = document(manifest)
    if output != "table":
        emit(doc, output)
        return
    lines = [
        f"Kind:         {resolved}",
        f"Name:         {name}",
        f"Labels:       {_mapping_text(manifest.metadata.labels)}",
        f"Annotations:  {_mapping_text(manifest.metadata.annotations)}",
        f"Revision:     {revision}",
    ]
    lines.extend(_describe_extra(manifest))
    lines.append("Spec:")
    lines.extend(_yaml_block(doc["spec"], 2))
    click.echo("\n".join(lines))


def _describe_extra(manifest: Manifest) -> list[str]:
    if isinstance(manifest, Agent):
        return [f"Module:       {manifest.spec.module}"]
    if isinstance(manifest, Workflow):
        steps = manifest.spec.steps
        return [f"Steps:        {len(steps)} ({', '.join(s.name for s in steps)})"]
    if isinstance(manifest, RoleBinding):
        return [f"Role:         {manifest.spec.role}"]
    return []


@click.command()
@output_option("dot", "mermaid")
@click.pass_obj
@error_boundary
def graph(obj: CliContext, output: str) -> None:
    """Print the agent dependency graph and each workflow's step DAG (live state)."""
    with open_store(obj.url(), write=False) as store:
        live = store.live()
    click.echo(to_dot(live) if output == "dot" else to_mermaid(live), nl=False)
