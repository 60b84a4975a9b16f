"""Pure rendering of the agent dependency graph and each workflow's step DAG.

Arrows point in run order: from a dependency to the agent that depends on it
(``scanner -> fixer``: the scanner starts first), and from a step to the steps that
need it. Output is deterministic (names sorted, steps in manifest order) so that it
can be diffed and committed. Two formats: Graphviz DOT and Mermaid ``flowchart``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from devskyy.model.manifests import StepSpec, Trigger, Workflow
from devskyy.model.resources import ResourceSet


@dataclass(frozen=True)
class Node:
    """One node: a stable id and its label."""

    id: str
    label: str


@dataclass(frozen=True)
class Cluster:
    """A titled group of nodes and the edges between them."""

    title: str
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]


def clusters(resources: ResourceSet) -> tuple[Cluster, ...]:
    """The agents cluster (always, possibly empty) then one cluster per workflow, by name."""
    agents = sorted(resources.agents, key=lambda a: a.name)
    agent_ids = {a.name: f"a{i}" for i, a in enumerate(agents)}
    agent_nodes = tuple(Node(agent_ids[a.name], a.name) for a in agents)
    agent_edges = tuple(
        (agent_ids[dep], agent_ids[a.name])
        for a in agents
        for dep in sorted(set(a.spec.dependencies))
        if dep in agent_ids
    )
    out = [Cluster("agents", agent_nodes, agent_edges)]
    for w, workflow in enumerate(sorted(resources.workflows, key=lambda x: x.name)):
        out.append(_workflow_cluster(workflow, f"w{w}"))
    return tuple(out)


def _workflow_cluster(workflow: Workflow, prefix: str) -> Cluster:
    steps = workflow.spec.steps
    ids = {s.name: f"{prefix}s{i}" for i, s in enumerate(steps)}
    nodes = tuple(Node(ids[s.name], _step_label(s)) for s in steps)
    edges = tuple((ids[need], ids[s.name]) for s in steps for need in s.needs if need in ids)
    return Cluster(f"workflow {workflow.name}", nodes, edges)


def _step_label(step: StepSpec) -> str:
    target = f"agent {step.agent}" if step.agent else f"capability {step.capability}"
    if step.trigger is not Trigger.ALL_SUCCEEDED:
        target += f", trigger {step.trigger.value}"
    return f"{step.name} ({target})"


def _quote(text: str) -> str:
    return json.dumps(text)


def to_dot(resources: ResourceSet) -> str:
    """Graphviz DOT: one ``cluster_`` subgraph per group."""
    lines = ["digraph devskyy {", "  rankdir=LR;", "  node [shape=box];"]
    for i, cluster in enumerate(clusters(resources)):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f"    label={_quote(cluster.title)};")
        lines.extend(f"    {n.id} [label={_quote(n.label)}];" for n in cluster.nodes)
        lines.extend(f"    {a} -> {b};" for a, b in cluster.edges)
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    # Mermaid labels are quoted; a double quote inside is written as an entity.
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(resources: ResourceSet) -> str:
    """A Mermaid ``flowchart LR`` with one subgraph per group."""
    lines = ["flowchart LR"]
    for i, cluster in enumerate(clusters(resources)):
        lines.append(f"  subgraph g{i}[{_mermaid_text(cluster.title)}]")
        lines.extend(f"    {n.id}[{_mermaid_text(n.label)}]" for n in cluster.nodes)
        lines.extend(f"    {a} --> {b}" for a, b in cluster.edges)
        lines.append("  end")
    return "\n".join(lines) + "\n"
