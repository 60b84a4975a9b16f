"""The pure planner: actions, exact field diffs, order, and its algebraic properties."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from planner_strategies import agent, binding, resource_sets, role, rs, workflow

from devskyy.core.plan import apply_plan, canonical, diff, plan
from devskyy.model.plan import ABSENT, Action, Change, FieldChange, Plan
from devskyy.model.resources import ResourceKey, ResourceSet, document

# -- properties ---------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(resource_sets())
def test_plan_of_a_set_against_itself_changes_nothing(x: ResourceSet) -> None:
    for prune in (False, True):
        p = plan(x, x, prune=prune)
        assert not p.has_changes
        assert p.unchanged == len(x)
        assert p.pending == ()


@settings(max_examples=80, deadline=None)
@given(resource_sets(), resource_sets())
def test_applying_a_pruning_plan_yields_the_desired_set(d: ResourceSet, live: ResourceSet) -> None:
    result = apply_plan(live, plan(d, live, prune=True))
    assert canonical(result) == canonical(d)
    # and then nothing is left to do
    assert not plan(d, result, prune=True).has_changes


@settings(max_examples=80, deadline=None)
@given(resource_sets(), resource_sets())
def test_without_prune_nothing_is_deleted(d: ResourceSet, live: ResourceSet) -> None:
    p = plan(d, live)
    assert p.deletes == 0
    result = apply_plan(live, p)
    assert result.keys() == d.keys() | live.keys()
    # desired resources all match; live-only ones are kept exactly and flagged orphaned
    for key, doc in canonical(d).items():
        assert canonical(result)[key] == doc
    orphans = {c.key for c in p.orphans}
    assert orphans == live.keys() - d.keys()
    for key in orphans:
        assert canonical(result)[key] == canonical(live)[key]


@settings(max_examples=40, deadline=None)
@given(resource_sets(), resource_sets())
def test_every_key_appears_once_in_apply_order(d: ResourceSet, live: ResourceSet) -> None:
    p = plan(d, live, prune=True)
    keys = [c.key for c in p]
    assert len(keys) == len(set(keys)) == len(d.keys() | live.keys())
    order = {"Role": 0, "RoleBinding": 1, "Agent": 2, "Workflow": 3}
    assert keys == sorted(keys, key=lambda k: (order[k.kind], k.name))


@settings(max_examples=40, deadline=None)
@given(resource_sets(), resource_sets())
def test_plan_json_is_serializable_and_counts_add_up(d: ResourceSet, live: ResourceSet) -> None:
    p = plan(d, live, prune=True)
    data = json.loads(json.dumps(p.to_json()))
    assert sum(data["summary"].values()) == len(p)
    assert data["hasChanges"] is p.has_changes


# -- actions ------------------------------------------------------------------------------


def test_create_update_delete_unchanged() -> None:
    live = rs(agent("seo", priority="medium"), agent("old"), agent("same"))
    desired = rs(agent("seo", priority="high"), agent("new"), agent("same"))
    p = plan(desired, live, prune=True)
    assert [(str(c.key), c.action) for c in p] == [
        ("Agent/new", Action.CREATE),
        ("Agent/old", Action.DELETE),
        ("Agent/same", Action.UNCHANGED),
        ("Agent/seo", Action.UPDATE),
    ]
    assert p.summary() == {"create": 1, "update": 1, "delete": 1, "unchanged": 1}
    assert (p.creates, p.updates, p.deletes, p.unchanged) == (1, 1, 1, 1)
    seo = p.changes[3]
    assert seo.fields == (FieldChange("spec.priority", "medium", "high"),)
    assert seo.before == document(live.get("Agent", "seo"))  # type: ignore[arg-type]
    assert seo.after == document(desired.get("Agent", "seo"))  # type: ignore[arg-type]
    assert p.changes[0].before is None
    assert p.changes[1].after is None


def test_without_prune_live_only_resources_are_orphaned_not_deleted() -> None:
    live = rs(agent("old"), agent("keep"))
    p = plan(rs(agent("keep")), live)
    old = p.changes[1]
    assert old == Change(
        ResourceKey("Agent", "old"),
        Action.UNCHANGED,
        document(live.get("Agent", "old")),  # type: ignore[arg-type]
        document(live.get("Agent", "old")),  # type: ignore[arg-type]
        orphaned=True,
    )
    assert not p.has_changes
    assert [str(c.key) for c in p.orphans] == ["Agent/old"]
    assert p.to_json()["orphaned"] == ["Agent/old"]


def test_kinds_are_ordered_roles_bindings_agents_workflows() -> None:
    desired = rs(
        workflow("flow", [{"name": "a", "agent": "zed"}]),
        agent("zed"),
        agent("abc"),
        binding("b", "r", [("User", "ann")]),
        role("r"),
    )
    p = plan(desired, ResourceSet())
    assert [str(c.key) for c in p] == [
        "Role/r",
        "RoleBinding/b",
        "Agent/abc",
        "Agent/zed",
        "Workflow/flow",
    ]


def test_spelled_out_defaults_equal_omitted_ones() -> None:
    explicit = agent("a", priority="medium", replicas=1, retry={"maxAttempts": 3})
    assert not plan(rs(explicit), rs(agent("a"))).has_changes


def test_empty_plan() -> None:
    p = plan(ResourceSet(), ResourceSet(), prune=True)
    assert p == Plan((), prune=True)
    assert not p.has_changes
    assert p.to_json() == {
        "hasChanges": False,
        "prune": True,
        "summary": {"create": 0, "update": 0, "delete": 0, "unchanged": 0},
        "orphaned": [],
        "changes": [],
    }


# -- field diffs --------------------------------------------------------------------------


def test_nested_field_paths_are_camel_case() -> None:
    before = rs(agent("a"))
    after = rs(agent("a", retry={"maxAttempts": 5}, circuitBreaker={"failureThreshold": 2}))
    (change,) = plan(after, before).changes
    assert change.fields == (
        FieldChange("spec.retry.maxAttempts", 3, 5),
        FieldChange("spec.circuitBreaker.failureThreshold", 5, 2),
    )


def test_scalar_lists_are_compared_whole() -> None:
    (change,) = plan(
        rs(agent("a", capabilities=["scan", "fix", "seo"])), rs(agent("a", capabilities=["scan"]))
    ).changes
    assert change.fields == (FieldChange("spec.capabilities", ["scan"], ["scan", "fix", "seo"]),)


def test_added_and_removed_keys_use_absent() -> None:
    (change,) = plan(
        rs(agent("a", config={"new": 1, "same": True})),
        rs(agent("a", config={"gone": "x", "same": True})),
    ).changes
    assert change.fields == (
        FieldChange("spec.config.gone", "x", ABSENT),
        FieldChange("spec.config.new", ABSENT, 1),
    )
    assert [f.to_json() for f in change.fields] == [
        {"path": "spec.config.gone", "before": "x"},
        {"path": "spec.config.new", "after": 1},
    ]


def test_keys_that_are_not_identifiers_are_quoted() -> None:
    assert diff({"labels": {"app.io/tier": "a"}}, {"labels": {"app.io/tier": "b"}}) == (
        FieldChange('labels["app.io/tier"]', "a", "b"),
    )


def test_lists_of_objects_are_diffed_by_index() -> None:
    steps: list[dict[str, Any]] = [
        {"name": "a", "agent": "x"},
        {"name": "b", "agent": "y", "needs": ["a"]},
    ]
    changed: list[dict[str, Any]] = [
        {"name": "a", "agent": "x"},
        {"name": "b", "agent": "z", "needs": ["a"]},
    ]
    (change,) = plan(rs(workflow("w", changed)), rs(workflow("w", steps))).changes
    assert change.fields == (FieldChange("spec.steps[1].agent", "y", "z"),)


def test_added_list_items_are_reported_whole() -> None:
    one = [{"name": "a", "agent": "x"}]
    two = [*one, {"name": "b", "agent": "y"}]
    (grow,) = plan(rs(workflow("w", two)), rs(workflow("w", one))).changes
    (added,) = grow.fields
    assert added.path == "spec.steps[1]"
    assert added.before is ABSENT
    assert added.after["agent"] == "y"
    (shrink,) = plan(rs(workflow("w", one)), rs(workflow("w", two))).changes
    assert [(f.path, f.after) for f in shrink.fields] == [("spec.steps[1]", ABSENT)]


def test_bool_and_int_are_different_values() -> None:
    assert diff({"x": True}, {"x": 1}) == (FieldChange("x", True, 1),)
    assert diff({"x": [1]}, {"x": [True]}) == (FieldChange("x", [1], [True]),)
    assert diff({"x": float("nan")}, {"x": float("nan")}) == ()


def test_type_change_between_container_and_scalar() -> None:
    assert diff({"x": {"a": 1}}, {"x": 3}) == (FieldChange("x", {"a": 1}, 3),)
    assert diff({"x": [1]}, {"x": {"a": 1}}) == (FieldChange("x", [1], {"a": 1}),)


def test_metadata_changes_are_updates() -> None:
    a = agent("a")
    labelled = a.model_copy(
        update={"metadata": a.metadata.model_copy(update={"labels": {"team": "x"}})}
    )
    (change,) = plan(rs(labelled), rs(a)).changes
    assert change.action is Action.UPDATE
    assert change.fields == (FieldChange("metadata.labels.team", ABSENT, "x"),)


def test_update_json_carries_fields_and_both_documents() -> None:
    p = plan(rs(agent("a", replicas=2)), rs(agent("a")))
    data = p.to_json()["changes"][0]
    assert data["action"] == "update"
    assert data["fields"] == [{"path": "spec.replicas", "before": 1, "after": 2}]
    assert data["before"]["spec"]["replicas"] == 1
    assert data["after"]["spec"]["replicas"] == 2


def test_apply_plan_keeps_unchanged_and_orphans() -> None:
    live = rs(agent("a"), agent("b"))
    out = apply_plan(live, plan(rs(agent("a", replicas=3)), live))
    assert [(m.name, m.spec.replicas) for m in out.agents] == [("a", 3), ("b", 1)]
