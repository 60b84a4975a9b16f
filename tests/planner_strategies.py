"""Hypothesis strategies and builders for resource sets (shared by the planner tests)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from devskyy.model.manifests import KINDS, Manifest
from devskyy.model.resources import ResourceSet

NAMES = ("alpha", "beta", "gamma", "delta", "eps-1", "z_9")


def agent(name: str, **spec: Any) -> Manifest:
    body: dict[str, Any] = {"module": f"devskyy.agents.{name.replace('-', '_')}:Agent"}
    body.update(spec)
    return KINDS["Agent"].model_validate(
        {"apiVersion": "devskyy.dev/v1", "kind": "Agent", "metadata": {"name": name}, "spec": body}
    )


def workflow(name: str, steps: list[dict[str, Any]], **spec: Any) -> Manifest:
    return KINDS["Workflow"].model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Workflow",
            "metadata": {"name": name},
            "spec": {"steps": steps, **spec},
        }
    )


def role(name: str, rules: list[dict[str, Any]] | None = None) -> Manifest:
    rules = rules or [{"resources": ["agents"], "permissions": ["read"]}]
    return KINDS["Role"].model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Role",
            "metadata": {"name": name},
            "spec": {"rules": rules},
        }
    )


def binding(name: str, role_name: str, subjects: list[tuple[str, str]]) -> Manifest:
    return KINDS["RoleBinding"].model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name},
            "spec": {"role": role_name, "subjects": [{"kind": k, "name": n} for k, n in subjects]},
        }
    )


def rs(*manifests: Manifest) -> ResourceSet:
    return ResourceSet(tuple(manifests))


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.text("ab", max_size=3), st.floats(0, 2)
)
_config = st.dictionaries(
    st.sampled_from(["a", "b", "c.d"]),
    st.one_of(_scalars, st.lists(_scalars, max_size=3), st.dictionaries(st.just("x"), _scalars)),
    max_size=3,
)


# Strategies are built once: constructing them inside draws dominates the run time.
_priority = st.sampled_from(["critical", "high", "medium", "low"])
_replicas = st.integers(1, 4)
_capabilities = st.lists(st.sampled_from(["scan", "fix", "seo"]), max_size=3)
_dependencies = st.lists(st.sampled_from(NAMES), max_size=2)
_retry = st.none() | st.integers(1, 5)
_labels = st.dictionaries(
    st.sampled_from(["team", "app.io/tier"]), st.text("xy", min_size=1, max_size=3)
)
_perms = st.lists(st.sampled_from(["read", "write", "execute", "admin"]), min_size=1, max_size=3)
_resources = st.sampled_from(["agents", "workflows/*"])
_step_count = st.integers(1, 3)
_step_agent = st.sampled_from(NAMES)
_names = st.lists(st.sampled_from(NAMES), unique=True, max_size=4)


def _agent(draw: st.DrawFn, name: str) -> Manifest:
    spec: dict[str, Any] = {
        "priority": draw(_priority),
        "replicas": draw(_replicas),
        "capabilities": draw(_capabilities),
        "dependencies": draw(_dependencies),
        "config": draw(_config),
    }
    attempts = draw(_retry)
    if attempts is not None:
        spec["retry"] = {"maxAttempts": attempts}
    manifest = agent(name, **spec)
    return manifest.model_copy(
        update={"metadata": manifest.metadata.model_copy(update={"labels": draw(_labels)})}
    )


def _role(draw: st.DrawFn, name: str) -> Manifest:
    return role(name, [{"resources": [draw(_resources)], "permissions": draw(_perms)}])


def _workflow(draw: st.DrawFn, name: str) -> Manifest:
    steps = [
        {"name": f"s{i}", "agent": draw(_step_agent), "needs": [f"s{i - 1}"] if i else []}
        for i in range(draw(_step_count))
    ]
    return workflow(name, steps, failFast=draw(st.booleans()))


@st.composite
def resource_sets(draw: st.DrawFn) -> ResourceSet:
    """A random set: a subset of names per kind, each with random content."""
    out: list[Manifest] = []
    for build in (_agent, _role, _workflow):
        for name in draw(_names):
            out.append(build(draw, name))
    draw(st.randoms()).shuffle(out)
    return ResourceSet(tuple(out))
