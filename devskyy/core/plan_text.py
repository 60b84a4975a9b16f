"""A plan as text for people, in Terraform's shape (pure; the CLI and the daemon print it).

    + create Agent/scanner
    ~ update Agent/seo
        spec.priority: "medium" -> "high"
    - delete Agent/old
    ? orphan Agent/legacy (not in the manifests; apply --prune deletes it)

    Plan: 1 to create, 1 to update, 1 to delete, 10 unchanged.

Values are written as JSON, so strings are quoted and ``null`` differs from a missing
field, which reads ``(absent)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from devskyy.model.plan import ABSENT, Action, Plan

Style = Callable[[str, str], str]
"""``style(text, action)``: how to colour a line (identity when colour is off)."""

SYMBOLS = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-"}


def _plain(text: str, _action: str) -> str:
    return text


def value_text(value: Any) -> str:
    """One value on one line: JSON, or ``(absent)`` for a field that does not exist."""
    if value is ABSENT:
        return "(absent)"
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def change_lines(plan: Plan, style: Style = _plain) -> list[str]:
    """One line per pending change (with its field lines), plus one per orphan."""
    lines: list[str] = []
    for change in plan.changes:
        if change.orphaned:
            lines.append(
                style(
                    f"? orphan {change.key} (not in the manifests; apply --prune deletes it)",
                    "orphan",
                )
            )
            continue
        if change.action is Action.UNCHANGED:
            continue
        symbol = SYMBOLS[change.action]
        lines.append(style(f"{symbol} {change.action.value} {change.key}", change.action.value))
        lines.extend(
            f"    {f.path}: {value_text(f.before)} -> {value_text(f.after)}" for f in change.fields
        )
    return lines


def summary_line(plan: Plan) -> str:
    """``Plan: 2 to create, 1 to update, 0 to delete, 10 unchanged.``"""
    return (
        f"Plan: {plan.creates} to create, {plan.updates} to update, "
        f"{plan.deletes} to delete, {plan.unchanged} unchanged."
    )


def revision_text(number: int | None) -> str:
    """``revision 3``, or ``no revision yet`` before the first apply."""
    return "no revision yet" if number is None else f"revision {number}"


def plan_text(plan: Plan, source: str, live_revision: int | None, style: Style = _plain) -> str:
    """The whole human rendering of a plan of ``source`` against live state."""
    lines = change_lines(plan, style)
    if not plan.has_changes:
        lines.append(f"No changes. Live state matches {source} ({revision_text(live_revision)}).")
        return "\n".join(lines)
    return "\n".join([*lines, "", summary_line(plan)])


def counts_text(plan: Plan) -> str:
    """``2 created, 1 updated, 0 deleted``."""
    return f"{plan.creates} created, {plan.updates} updated, {plan.deletes} deleted"
