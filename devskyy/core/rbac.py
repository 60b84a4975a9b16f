"""RBAC decisions: who may do what to which resource (pure).

Permissions are ``read``, ``write``, ``execute`` and ``admin``; ``admin`` on a resource
implies the other three there. Everything is denied unless a rule allows it.

A principal's rules come from three places: the roles its RoleBindings name (plus the
binding's extra ``resources`` rules), the roles of its currently usable API keys, and
runtime grants. Subjects are matched by name; ``kind`` (Agent or User) is informational.

Resource vocabulary (the HTTP API maps each endpoint to one permission on one of these):

=========================  ===================================================
``agents``                 the agent list (registry view, discovery)
``agents/NAME``            one agent: read info/health/history, execute tasks,
                           write (hot reload), admin
``workflows``              the workflow list
``workflows/NAME``         one workflow: read, execute (run it)
``runs``, ``runs/ID``      workflow runs: read progress, write (resume/cancel)
``keys``                   API keys: read (list, never secrets), write (create,
                           rotate, revoke)
``audit``                  the audit log: read, verify
``security``               summary (read), grants and unblocking (write)
``database``               the data services use (read/write)
``manifests``              desired state: read (plan), write (apply, rollback)
``orchestrator``           health, metrics, dependencies (read), execute tasks
``registry``               the agent registry: read, write (discover, reload)
``metrics``                the Prometheus endpoint
=========================  ===================================================

Patterns: ``*`` alone matches every resource; a ``*`` inside a segment matches any
characters but ``/``; a final ``/*`` segment matches one or more further segments
(``agents/*`` covers ``agents/scanner`` and ``agents/scanner/health`` but not
``agents`` itself).

No escalation: ``can_grant`` refuses a key, grant or binding that would give more than
the granter holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from devskyy.model.manifests import Permission, Role, RoleBinding
from devskyy.model.security import Grant

PERMISSIONS = tuple(p.value for p in Permission)
_ADMIN = Permission.ADMIN.value


@dataclass(frozen=True)
class Decision:
    """The answer, why, and the rule that decided it (``None`` when denied)."""

    allowed: bool
    reason: str
    matched_rule: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression a resource pattern stands for."""
    if pattern == "*":
        return re.compile(r".*", re.DOTALL)
    segments = pattern.split("/")
    parts = []
    for index, segment in enumerate(segments):
        if segment == "*" and index == len(segments) - 1:
            parts.append(r"[^/]+(?:/[^/]+)*")
        else:
            parts.append("[^/]*".join(re.escape(piece) for piece in segment.split("*")))
    return re.compile("/".join(parts))


def matches(pattern: str, resource: str) -> bool:
    """Whether a resource pattern covers a concrete resource (or a narrower pattern)."""
    return compile_pattern(pattern).fullmatch(resource) is not None


def implies(held: str, wanted: str) -> bool:
    """``admin`` implies every permission; the others imply only themselves."""
    return held in (wanted, _ADMIN)


def _matcher(pattern: str) -> Callable[[str], object]:
    """A test of one resource against ``pattern``: plain equality when it has no ``*``."""
    if "*" not in pattern:
        return pattern.__eq__
    return compile_pattern(pattern).fullmatch


@dataclass(frozen=True)
class CompiledRule:
    """One (permissions, resources) rule, with where it came from for the reason."""

    permissions: frozenset[str]
    patterns: tuple[str, ...]
    origin: str
    _tests: tuple[tuple[str, Callable[[str], object]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Each pattern's test is built once per policy, not looked up on every decision.
        object.__setattr__(self, "_tests", tuple((p, _matcher(p)) for p in self.patterns))

    def allows(self, permission: str, resource: str) -> str | None:
        """The matching pattern when this rule allows ``permission`` on ``resource``."""
        if permission not in self.permissions and _ADMIN not in self.permissions:
            return None
        for pattern, test in self._tests:
            if test(resource):
                return pattern
        return None


def _role_rules(role: Role) -> tuple[CompiledRule, ...]:
    return tuple(
        CompiledRule(
            frozenset(p.value for p in rule.permissions),
            tuple(rule.resources),
            f"role {role.name} rules[{index}]",
        )
        for index, rule in enumerate(role.spec.rules)
    )


class Policy:
    """Roles, bindings and grants indexed for fast decisions (built once per change)."""

    def __init__(
        self,
        roles: Iterable[Role],
        bindings: Iterable[RoleBinding],
        grants: Iterable[Grant] = (),
    ) -> None:
        self.roles: dict[str, tuple[CompiledRule, ...]] = {r.name: _role_rules(r) for r in roles}
        self.bound: dict[str, list[tuple[str, str]]] = {}
        self.extra: dict[str, list[CompiledRule]] = {}
        for binding in bindings:
            for subject in binding.spec.subjects:
                self.bound.setdefault(subject.name, []).append((binding.spec.role, binding.name))
                for index, rule in enumerate(binding.spec.resources):
                    self.extra.setdefault(subject.name, []).append(
                        CompiledRule(
                            frozenset(p.value for p in rule.permissions),
                            tuple(rule.resources),
                            f"rolebinding {binding.name} resources[{index}]",
                        )
                    )
        for grant in grants:
            self.extra.setdefault(grant.principal, []).append(
                CompiledRule(
                    frozenset({grant.permission}),
                    (grant.resource,),
                    f"grant {grant.permission} on {grant.resource} by {grant.granted_by}",
                )
            )

    def role_names(self, principal: str, key_roles: Iterable[str] = ()) -> list[str]:
        """Every role the principal holds: bound ones first, then its keys' roles."""
        names = [role for role, _ in self.bound.get(principal, [])]
        names.extend(r for r in key_roles if r not in names)
        return names

    def rules_for(self, principal: str, key_roles: Iterable[str] = ()) -> list[CompiledRule]:
        """Every rule that applies to the principal (roles that do not exist give none)."""
        rules: list[CompiledRule] = []
        if principal not in self.bound and principal not in self.extra:
            # The common case (an agent known only by its keys): the keys' roles alone.
            for role in dict.fromkeys(key_roles):
                rules.extend(self.roles.get(role, ()))
            return rules
        for role in self.role_names(principal, key_roles):
            rules.extend(self.roles.get(role, ()))
        rules.extend(self.extra.get(principal, ()))
        return rules

    def decide(
        self,
        principal: str,
        permission: str,
        resource: str,
        key_roles: Iterable[str] = (),
    ) -> Decision:
        """Allow when one rule covers ``permission`` on ``resource``; deny otherwise."""
        if permission not in PERMISSIONS:
            return Decision(False, f"unknown permission {permission!r}")
        for rule in self.rules_for(principal, key_roles):
            pattern = rule.allows(permission, resource)
            if pattern is not None:
                return Decision(
                    True,
                    f"{principal} may {permission} {resource}",
                    f"{rule.origin}: {pattern}",
                )
        return Decision(False, f"no rule allows {principal} to {permission} {resource}")

    def holdings(self, principal: str, key_roles: Iterable[str] = ()) -> list[tuple[str, str]]:
        """The (permission, pattern) pairs the principal holds."""
        return [
            (perm, pattern)
            for rule in self.rules_for(principal, key_roles)
            for perm in sorted(rule.permissions)
            for pattern in rule.patterns
        ]

    def role_holdings(self, role: str) -> list[tuple[str, str]]:
        """The (permission, pattern) pairs a role gives."""
        return [
            (perm, pattern)
            for rule in self.roles.get(role, ())
            for perm in sorted(rule.permissions)
            for pattern in rule.patterns
        ]


def decide(  # noqa: PLR0917 - the documented signature
    principal: str,
    permission: str,
    resource: str,
    roles: Iterable[Role],
    bindings: Iterable[RoleBinding],
    grants: Iterable[Grant] = (),
    *,
    key_roles: Iterable[str] = (),
) -> Decision:
    """One decision from scratch (``Policy`` is the indexed form for repeated use)."""
    return Policy(roles, bindings, grants).decide(principal, permission, resource, key_roles)


def covers(held: str, wanted: str) -> bool:
    """Whether pattern ``held`` matches every resource pattern ``wanted`` matches.

    ``wanted`` is matched as text, so each of its ``*`` can only be absorbed by a
    wildcard of ``held``. A ``wanted`` that ends in a multi-segment ``*`` (or is ``*``)
    must also be matched one segment deeper, so that a held wildcard confined to one
    segment cannot pass for it.
    """
    if not matches(held, wanted):
        return False
    if wanted == "*" or wanted.endswith("/*"):
        return matches(held, wanted + "/*")
    return True


def can_grant(granter: Sequence[tuple[str, str]], requested: Sequence[tuple[str, str]]) -> Decision:
    """Whether someone holding ``granter`` may hand out ``requested``.

    Both are (permission, resource pattern) pairs. Each requested pair must be covered
    by a held one: the held permission implies it and the held pattern ``covers`` the
    requested one.
    """
    for permission, pattern in requested:
        if not any(
            implies(held_perm, permission) and covers(held_pattern, pattern)
            for held_perm, held_pattern in granter
        ):
            return Decision(
                False, f"escalation refused: granter does not hold {permission} on {pattern}"
            )
    return Decision(True, "every requested permission is held by the granter")
