"""What each dashboard page shows, gathered from the ``System`` as plain dicts for templates.

Translation only: every figure comes from the same objects the API reads (registry,
orchestrator metrics, run store, revisions, security manager). Elements a viewer may not
read are left out here, not hidden in the template, so they never reach the browser.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devskyy.api.ui.access import AGENT_DETAIL, KEYS, WORKFLOW, Viewer
from devskyy.api.ui.svg import graph_svg
from devskyy.core.plan import plan
from devskyy.core.plan_text import change_lines
from devskyy.errors import DevskyyError
from devskyy.model.manifests import Workflow
from devskyy.model.plan import Revision
from devskyy.model.resources import ResourceSet
from devskyy.runtime.reconciler import load_tree

if TYPE_CHECKING:
    from devskyy.api.context import ApiContext

OUTPUT_CAP = 20_000
"""Characters of one step's output shown on the run page (the API has the rest)."""


def when(epoch: float | None) -> str:
    """A UTC time for people (``2026-12-03 09:12:50Z``), or an em dash."""
    if epoch is None:
        return "—"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def short_time(iso: str | None) -> str:
    """An ISO-8601 UTC time from the security manager, to the second (``…09:12:50Z``)."""
    if not iso:
        return "—"
    return iso[:19].replace("T", " ") + "Z" if iso.endswith("+00:00") else iso


def seconds(value: float | None) -> str:
    """A duration for people: ``850 ms``, ``12.3 s``, ``4 min 2 s``."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{int(value // 60)} min {int(value % 60)} s"


def pretty(value: Any, cap: int = OUTPUT_CAP) -> str:
    """JSON, indented, cut at ``cap`` characters with a note."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    if len(text) > cap:
        return text[:cap] + f"\n… ({len(text) - cap} more characters; see /api/runs)"
    return text


def live(ctx: ApiContext) -> ResourceSet:
    """Live state, parsed once per revision (the system's live-state view).

    Parsing 1,000 manifests takes ~150 ms; the revision number is one indexed query.
    """
    return ctx.system.live.resources()


def applied_workflow(ctx: ApiContext, name: str) -> Workflow | None:
    """The applied Workflow called ``name``, if any (from the cached live state)."""
    found = live(ctx).get("Workflow", name)
    return found if isinstance(found, Workflow) else None


# -- overview -------------------------------------------------------------------------


def _anomaly_text(anomaly: dict[str, Any]) -> str:
    return f"{anomaly['kind']} {anomaly['value']:.3g} > {anomaly['threshold']:.3g}"


def agent_rows(ctx: ApiContext, viewer: Viewer) -> list[dict[str, Any]]:
    """One row per agent: status, replicas, breaker, and (if readable) its figures."""
    registry, orchestrator = ctx.system.registry, ctx.system.orchestrator
    rows = []
    for agent in registry.list_agents():
        name = agent["name"]
        row: dict[str, Any] = {
            "name": name,
            "status": agent["status"],
            "replicas": agent["replicas"],
            "priority": agent["priority"],
            "detail": viewer.may_fill(AGENT_DETAIL, agent_name=name),
        }
        if row["detail"]:
            m = orchestrator.get_agent_metrics(name)
            live = sum(r["status"] in ("healthy", "degraded") for r in m["replicas"])
            row.update(
                live_replicas=live,
                breaker=m["circuit_breaker"]["state"],
                p95=seconds(m["p95_response_time"]) if m["total_calls"] else "—",
                error_rate=f"{m['error_rate'] * 100:.1f} %" if m["window_calls"] else "—",
                calls=m["total_calls"],
                anomalies=[_anomaly_text(a) for a in m["recent_anomalies"][-3:]],
            )
        rows.append(row)
    for name, error in sorted(registry.failures.items()):
        if all(r["name"] != name for r in rows):
            detail = viewer.may_fill(AGENT_DETAIL, agent_name=name)
            rows.append(
                {
                    "name": name,
                    "status": "failed",
                    "replicas": 0,
                    "priority": "—",
                    "detail": False,
                    "error": error if detail else None,
                }
            )
    return rows


def status_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many agents are in each status (the overview's headline)."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return dict(sorted(counts.items()))


# -- graphs ---------------------------------------------------------------------------


def agent_graph(ctx: ApiContext) -> dict[str, Any]:
    """The agent dependency graph as SVG (dependency -> dependent) plus its facts.

    Built from the registry's listing (the orchestrator's ``get_dependency_graph`` also
    lists each agent's dependents, quadratic in the number of agents).
    """
    agents = ctx.system.registry.list_agents()
    status = {a["name"]: a["status"] for a in agents}
    needs = {a["name"]: list(a["dependencies"]) for a in agents}
    missing = sorted({d for deps in needs.values() for d in deps if d not in status})
    nodes = [*status, *missing]
    failed = ctx.system.registry.failures
    states = {n: status.get(n) or ("failed" if n in failed else "missing") for n in nodes}
    edges = [(d, n) for n, deps in needs.items() for d in deps]
    return {
        "svg": graph_svg("Agent dependencies", nodes, edges, states),
        "nodes": [{"name": n, "status": states[n], "needs": needs.get(n)} for n in nodes],
    }


def workflow_graphs(ctx: ApiContext, viewer: Viewer) -> list[dict[str, Any]]:
    """Each readable applied workflow's step DAG as SVG."""
    out = []
    for workflow in live(ctx).workflows:
        name = workflow.metadata.name
        if not viewer.may_fill(WORKFLOW, workflow_name=name):
            continue
        steps = workflow.spec.steps
        out.append(
            {
                "name": name,
                "svg": graph_svg(
                    f"Workflow {name}",
                    [s.name for s in steps],
                    [(need, s.name) for s in steps for need in s.needs],
                ),
                "steps": [
                    {"name": s.name, "runs": s.agent or f"by {s.capability}", "needs": s.needs}
                    for s in steps
                ],
            }
        )
    return out


# -- revisions ------------------------------------------------------------------------


def _revision(ctx: ApiContext, r: Revision) -> dict[str, Any]:
    return {
        "number": r.number,
        "created": r.created_at.strftime("%Y-%m-%d %H:%M:%SZ"),
        # A tree on the server is shown as answers show paths (docs/api.md, "Paths in
        # answers"); a git URL is left as it is.
        "source": ctx.paths.path(r.source),
        "commit": r.git_commit,
        "dirty": r.git_dirty,
        "summary": r.summary,
        "rollback_of": r.rollback_of,
    }


def revisions(ctx: ApiContext) -> list[dict[str, Any]]:
    """Every revision, newest first, with its counts, source and git commit."""
    return [_revision(ctx, r) for r in reversed(ctx.system.state.revisions())]


def latest_revision(ctx: ApiContext) -> dict[str, Any] | None:
    """The latest revision as ``revisions`` shows it (one row read), None before any."""
    latest = ctx.system.state.latest_revision()
    return None if latest is None else _revision(ctx, latest)


def revision(ctx: ApiContext, number: int) -> dict[str, Any] | None:
    """Revision ``number`` as ``revisions`` shows it (one row read), None if there is none."""
    found = ctx.system.state.revision(number)
    return None if found is None else _revision(ctx, found)


DIFF_CACHE = 16
"""Revision diffs kept in memory: a stored revision never changes, so neither does its
diff, and re-planning 1,000 resources on every view would cost ~100 ms."""


def revision_diff(ctx: ApiContext, number: int) -> list[tuple[str, str]]:
    """Revision ``number``'s plan against the one before it: (action, line) pairs."""
    cache = ctx.revision_diffs
    if number not in cache:
        if len(cache) >= DIFF_CACHE:
            del cache[next(iter(cache))]  # the oldest entry
        cache[number] = _revision_diff(ctx, number)
    return cache[number]


def _revision_diff(ctx: ApiContext, number: int) -> list[tuple[str, str]]:
    after = ctx.system.state.snapshot(number)
    before = ctx.system.state.snapshot(number - 1) if number > 1 else ResourceSet(())
    marked = change_lines(plan(after, before, prune=True), lambda text, action: f"{action}\0{text}")
    pairs = []
    for line in marked:
        action, sep, text = line.partition("\0")
        pairs.append((action, text) if sep else ("detail", line))
    return pairs


def drift(ctx: ApiContext) -> dict[str, Any]:
    """Whether live state matches the manifest tree the server watches (cached 5 s).

    ``watch --serve`` names its tree in ``system.manifests_tree``; without one (plain
    ``serve``) the answer is unknown, and the page says so.
    """
    tree = ctx.system.manifests_tree
    if tree is None:
        return {"known": False}
    key = (str(tree), ctx.system.state.current_revision(), ctx.system.clock.monotonic() // 5)
    cached = ctx.drift
    if cached is not None and cached[0] == key:
        result: dict[str, Any] = cached[1]
        return result
    try:
        desired = load_tree(Path(tree), ctx.system.registry.prefixes())
    except DevskyyError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        result = {
            "known": True,
            "tree": ctx.paths.path(str(tree)),
            "matches": False,
            "problem": ctx.paths.message(first),
        }
    else:
        pending = plan(desired, live(ctx))
        result = {
            "known": True,
            "tree": ctx.paths.path(str(tree)),
            "matches": not pending.has_changes,
            "summary": pending.summary(),
        }
    ctx.drift = (key, result)
    return result


# -- security -------------------------------------------------------------------------


def security(ctx: ApiContext, viewer: Viewer) -> dict[str, Any]:
    """Key counts and blocks, and the keys themselves when the role may read keys."""
    summary = ctx.security.get_security_summary()
    keys = ctx.security.list_api_keys() if viewer.may(KEYS) else None
    return {"summary": summary, "keys": keys}


def audit(ctx: ApiContext, actor: str | None, limit: int = 100) -> dict[str, Any]:
    """The newest events (newest first) and the chain's verify result."""
    ctx.security.flush()
    events = ctx.security.get_audit_log(agent_name=actor or None, limit=limit)
    report = ctx.security.verify_audit_log()
    return {"events": list(reversed(events)), "report": report, "actor": actor or ""}
