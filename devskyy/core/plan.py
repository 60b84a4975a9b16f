"""The pure planner: desired vs live ``ResourceSet`` → ``Plan``, and a field-level diff.

Both sides are compared as canonical documents (``devskyy.model.resources.document``:
camelCase, defaults filled in), so a manifest that spells out a default equals one that
leaves it out. Dicts are diffed key by key; lists of scalars are compared whole (one
line ``["a", "b"] -> ["a", "c", "b"]`` reads better than per-index noise); lists that
hold dicts or lists are diffed item by item, with items beyond the shorter side reported
as added or removed.

Deletions happen only with ``prune``; without it, live resources missing from the
manifests stay and are listed as unchanged changes flagged ``orphaned``.
The order is the apply order: kinds in ``KIND_ORDER`` (roles before the bindings that
name them, agents before the workflows that call them), then names.
"""

from __future__ import annotations

import json
import re
from typing import Any

from devskyy.model.manifests import Manifest
from devskyy.model.plan import ABSENT, Action, Change, FieldChange, Plan
from devskyy.model.resources import (
    KIND_ORDER,
    ResourceKey,
    ResourceSet,
    document,
    from_document,
)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def sort_key(key: ResourceKey) -> tuple[int, str]:
    """Apply order: ``KIND_ORDER`` first (unknown kinds last), then the name."""
    rank = KIND_ORDER.index(key.kind) if key.kind in KIND_ORDER else len(KIND_ORDER)
    return (rank, key.name)


def _join(prefix: str, key: str) -> str:
    part = key if _IDENT.match(key) else '["' + key.replace('"', '\\"') + '"]'
    if not prefix:
        return part
    return prefix + part if part.startswith("[") else f"{prefix}.{part}"


def _is_container(value: Any) -> bool:
    return isinstance(value, dict | list)


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _same(a: Any, b: Any) -> bool:
    # Compare as JSON text: ``True == 1`` and ``nan != nan`` in Python, but a bool
    # turning into a number is a change, and an unchanged NaN is not.
    if a is b:
        return True
    return _text(a) == _text(b)


def diff(before: Any, after: Any, path: str = "") -> tuple[FieldChange, ...]:
    """Every leaf that differs between two JSON values, in document order."""
    out: list[FieldChange] = []
    _diff(before, after, path, out)
    return tuple(out)


def _diff(before: Any, after: Any, path: str, out: list[FieldChange]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in before:
            sub = _join(path, str(key))
            if key in after:
                _diff(before[key], after[key], sub, out)
            else:
                out.append(FieldChange(sub, before[key], ABSENT))
        for key in after:
            if key not in before:
                out.append(FieldChange(_join(path, str(key)), ABSENT, after[key]))
        return
    if (
        isinstance(before, list)
        and isinstance(after, list)
        and any(_is_container(v) for v in (*before, *after))
    ):
        for i in range(max(len(before), len(after))):
            sub = f"{path}[{i}]"
            if i >= len(after):
                out.append(FieldChange(sub, before[i], ABSENT))
            elif i >= len(before):
                out.append(FieldChange(sub, ABSENT, after[i]))
            else:
                _diff(before[i], after[i], sub, out)
        return
    if not _same(before, after):
        out.append(FieldChange(path, before, after))


def plan(desired: ResourceSet, live: ResourceSet, *, prune: bool = False) -> Plan:
    """The changes that make ``live`` match ``desired``; deletions only with ``prune``."""
    changes: list[Change] = []
    for key in sorted(desired.keys() | live.keys(), key=sort_key):
        want = desired.get(key.kind, key.name)
        have = live.get(key.kind, key.name)
        if want is None:
            assert have is not None
            doc = document(have)
            if prune:
                changes.append(Change(key, Action.DELETE, doc, None))
            else:
                changes.append(Change(key, Action.UNCHANGED, doc, doc, orphaned=True))
            continue
        after = document(want)
        if have is None:
            changes.append(Change(key, Action.CREATE, None, after))
            continue
        before = document(have)
        # One C-encoded comparison settles the common "nothing changed" case.
        fields = () if _text(before) == _text(after) else diff(before, after)
        action = Action.UPDATE if fields else Action.UNCHANGED
        changes.append(Change(key, action, before, after, fields))
    return Plan(tuple(changes), prune=prune)


def apply_plan(live: ResourceSet, plan_: Plan) -> ResourceSet:
    """The live set after ``plan_``, in apply order (what a store holds after ``apply``)."""
    index: dict[tuple[str, str], Manifest] = {(m.kind, m.metadata.name): m for m in live}
    for change in plan_.changes:
        slot = (change.key.kind, change.key.name)
        if change.action is Action.DELETE:
            index.pop(slot, None)
        elif change.action in (Action.CREATE, Action.UPDATE):
            assert change.after is not None
            index[slot] = from_document(change.after)
    ordered = sorted(index.values(), key=lambda m: sort_key(ResourceKey(m.kind, m.metadata.name)))
    return ResourceSet(tuple(ordered))


def canonical(resources: ResourceSet) -> dict[ResourceKey, dict[str, Any]]:
    """Key → canonical document: two sets with the same content compare equal here."""
    return {ResourceKey(m.kind, m.metadata.name): document(m) for m in resources}
