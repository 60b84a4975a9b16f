"""RBAC: the committed role matrix, wildcards, deny by default, grants, no escalation."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from security_helpers import shipped_roles

from devskyy.core.rbac import Decision, Policy, can_grant, decide, matches
from devskyy.model.manifests import Role, RoleBinding
from devskyy.model.security import Grant

MATRIX = Path(__file__).parent / "data" / "rbac_matrix.csv"
ROLES = ("admin", "operator", "analyst", "service", "guest")
PERMISSIONS = ("read", "write", "execute", "admin")


def _rows() -> list[dict[str, str]]:
    with MATRIX.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_matrix_covers_every_role_permission_and_resource() -> None:
    rows = _rows()
    resources = sorted({r["resource"] for r in rows})
    assert len(resources) >= 13
    combos = {(r["role"], r["permission"], r["resource"]) for r in rows}
    assert combos == {(ro, p, res) for ro in ROLES for p in PERMISSIONS for res in resources}
    assert len(rows) == len(combos)
    assert {r["expected"] for r in rows} == {"allow", "deny"}


def test_matrix_against_the_shipped_role_manifests() -> None:
    live = shipped_roles()
    assert sorted(r.name for r in live.roles) == sorted(ROLES)
    wrong = []
    for row in _rows():
        principal = f"user-{row['role']}"
        decision = decide(
            principal,
            row["permission"],
            row["resource"],
            live.roles,
            live.role_bindings,
            key_roles=[row["role"]],
        )
        if decision.allowed != (row["expected"] == "allow"):
            wrong.append((row, decision))
    assert wrong == []


def _role(name: str, rules: list[dict[str, list[str]]]) -> Role:
    return Role.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Role",
            "metadata": {"name": name},
            "spec": {"rules": rules},
        }
    )


def _binding(
    name: str, role: str, subjects: list[str], extra: list[dict[str, list[str]]] | None = None
) -> RoleBinding:
    return RoleBinding.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name},
            "spec": {
                "role": role,
                "subjects": [{"kind": "Agent", "name": s} for s in subjects],
                "resources": extra or [],
            },
        }
    )


def test_deny_by_default() -> None:
    assert decide("nobody", "read", "agents", [], []) == Decision(
        False, "no rule allows nobody to read agents"
    )


def test_bound_role_allows_and_names_the_rule() -> None:
    role = _role("reader", [{"resources": ["agents/*"], "permissions": ["read"]}])
    binding = _binding("readers", "reader", ["scanner"])
    decision = decide("scanner", "read", "agents/fixer", [role], [binding])
    assert decision == Decision(
        True, "scanner may read agents/fixer", "role reader rules[0]: agents/*"
    )
    assert not decide("fixer", "read", "agents/fixer", [role], [binding])
    assert not decide("scanner", "write", "agents/fixer", [role], [binding])


def test_binding_to_missing_role_grants_nothing() -> None:
    binding = _binding("ghost", "does-not-exist", ["scanner"])
    assert not decide("scanner", "read", "agents", [], [binding])


def test_binding_extra_resources_and_runtime_grants() -> None:
    binding = _binding(
        "extra", "none", ["seo"], [{"resources": ["database"], "permissions": ["write"]}]
    )
    decision = decide("seo", "write", "database", [], [binding])
    assert decision.matched_rule == "rolebinding extra resources[0]: database"
    grant = Grant("email", "workflows/content_pipeline", "execute", "alice")
    decision = decide("email", "execute", "workflows/content_pipeline", [], [], [grant])
    assert decision.allowed
    assert decision.matched_rule == (
        "grant execute on workflows/content_pipeline by alice: workflows/content_pipeline"
    )
    assert not decide("email", "read", "workflows/content_pipeline", [], [], [grant])


def test_admin_implies_read_write_execute_but_not_the_reverse() -> None:
    admin = _role("a", [{"resources": ["keys"], "permissions": ["admin"]}])
    rwx = _role("b", [{"resources": ["keys"], "permissions": ["read", "write", "execute"]}])
    for perm in PERMISSIONS:
        assert decide("x", perm, "keys", [admin], [], key_roles=["a"]).allowed
    assert not decide("x", "admin", "keys", [rwx], [], key_roles=["b"]).allowed


def test_unknown_permission_is_denied() -> None:
    admin = _role("a", [{"resources": ["*"], "permissions": ["admin"]}])
    assert decide("x", "delete", "keys", [admin], [], key_roles=["a"]) == Decision(
        False, "unknown permission 'delete'"
    )


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("*", "agents", True),
        ("*", "agents/scanner/health", True),
        ("agents", "agents", True),
        ("agents", "agents/scanner", False),
        ("agents/*", "agents", False),
        ("agents/*", "agents/scanner", True),
        ("agents/*", "agents/scanner/health", True),
        ("agents/*", "agentsx/scanner", False),
        ("agents/s*", "agents/scanner", True),
        ("agents/s*", "agents/fixer", False),
        ("agents/s*", "agents/s/x", False),
        ("agents/*/health", "agents/scanner/health", True),
        ("agents/*/health", "agents/scanner/history", False),
        ("work.flows", "workflows", False),
        ("runs/?", "runs/1", False),
    ],
)
def test_wildcards(pattern: str, resource: str, expected: bool) -> None:
    assert matches(pattern, resource) is expected


def test_can_grant_only_what_is_held() -> None:
    held = [("read", "agents/*"), ("admin", "database"), ("execute", "workflows/scan*")]
    assert can_grant(held, [("read", "agents/scanner")]).allowed
    assert can_grant(held, [("read", "agents/*")]).allowed
    assert can_grant(held, [("write", "database"), ("read", "database")]).allowed
    assert can_grant(held, [("execute", "workflows/scan_and_fix")]).allowed
    refused = can_grant(held, [("read", "agents/scanner"), ("write", "agents/scanner")])
    assert refused == Decision(
        False, "escalation refused: granter does not hold write on agents/scanner"
    )
    assert not can_grant(held, [("read", "*")]).allowed
    assert not can_grant(held, [("read", "agents")]).allowed
    assert not can_grant(held, [("admin", "database/*")]).allowed
    assert not can_grant(held, [("execute", "workflows/*")]).allowed
    assert can_grant([("admin", "*")], [("admin", "*"), ("read", "x/y/z")]).allowed
    assert can_grant([], []).allowed


# Which role may hand out which (keys or bindings), by the rule "only what you hold".
MAY_GRANT = {
    "admin": {"admin", "operator", "analyst", "service", "guest"},
    "operator": {"operator", "service", "guest"},
    "analyst": {"analyst", "guest"},
    "service": {"service", "guest"},
    "guest": {"guest"},
}


def test_shipped_roles_cannot_escalate_to_a_higher_role() -> None:
    live = shipped_roles()
    policy = Policy(live.roles, live.role_bindings)
    for granter in ROLES:
        for target in ROLES:
            decision = can_grant(policy.role_holdings(granter), policy.role_holdings(target))
            assert decision.allowed is (target in MAY_GRANT[granter]), (granter, target)


def test_shipped_agents_are_bound_to_service() -> None:
    live = shipped_roles()
    policy = Policy(live.roles, live.role_bindings)
    assert policy.decide("scanner", "write", "database").allowed
    assert policy.decide("scanner", "execute", "workflows/scan_and_fix").allowed
    assert not policy.decide("scanner", "write", "keys").allowed
    assert policy.decide("security", "read", "audit").allowed
    assert not policy.decide("fixer", "read", "audit").allowed


SEGMENTS = st.sampled_from(["agents", "a", "b", "*", "a*", "*b", "**"])
PATTERNS = st.lists(SEGMENTS, min_size=1, max_size=3).map("/".join)
RESOURCES = [
    "/".join(parts)
    for n in (1, 2, 3, 4)
    for parts in itertools.product(["agents", "a", "b", "ab", "x"], repeat=n)
]


@settings(max_examples=300, deadline=None)
@given(held=st.lists(PATTERNS, min_size=1, max_size=3), wanted=PATTERNS)
def test_can_grant_never_hands_out_a_resource_the_granter_lacks(
    held: list[str], wanted: str
) -> None:
    decision = can_grant([("read", h) for h in held], [("read", wanted)])
    if decision.allowed:
        for resource in RESOURCES:
            if matches(wanted, resource):
                assert any(matches(h, resource) for h in held), (held, wanted, resource)


def test_a_one_segment_wildcard_does_not_cover_a_deep_one() -> None:
    assert not can_grant([("read", "agents/**")], [("read", "agents/*")]).allowed
    assert can_grant([("read", "agents/*")], [("read", "agents/**")]).allowed
    assert not can_grant([("read", "*/*")], [("read", "*")]).allowed
