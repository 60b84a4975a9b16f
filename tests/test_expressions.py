"""Workflow expressions: raw values, interpolation, references, missing data, conditions."""

from __future__ import annotations

from typing import Any

import pytest

from devskyy.core.expressions import (
    ExpressionError,
    Reference,
    parse,
    render,
    templates_in,
    truthy,
)
from devskyy.errors import MissingInput

CONTEXT: dict[str, Any] = {
    "params": {"a": "A", "b": "B", "n": 3, "files": ["x.py"], "off": False},
    "steps": {"scan": {"output": {"counts": {"fixable": 2}, "files": ["a", "b"]}}},
}


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("${{ params.files }}", ["x.py"]),  # one expression: the raw value
        ("  ${{ params.n }} ", 3),
        ("${{ params.a }}-${{ params.b }}", "A-B"),  # two: a string
        ("n=${{ params.n }}", "n=3"),
        ("${{ steps.scan.output.counts }}!", '{"fixable":2}!'),
        ("${{ params.missing || `10` }}", 10),
        ("plain text", "plain text"),
        ({"k": ["${{ params.a }}", 1]}, {"k": ["A", 1]}),
    ],
)
def test_render(template: Any, value: Any) -> None:
    assert render(template, CONTEXT) == value


def test_missing_data_fails_loudly() -> None:
    with pytest.raises(MissingInput) as err:
        render("${{ steps.scan.output.nope }}", CONTEXT)
    assert str(err.value) == "${{ steps.scan.output.nope }} evaluated to nothing"


def test_references_name_what_is_read() -> None:
    expr = parse("length(steps.scan.output.files[?@ != 'a']) > `0` && params.n")
    assert expr.references == frozenset({Reference("steps", "scan"), Reference("params", "n")})
    assert [e.source for e in templates_in({"x": "${{ params.a }}-${{ params.b }}"})] == [
        "params.a",
        "params.b",
    ]


def test_only_params_and_steps_may_be_read() -> None:
    with pytest.raises(ExpressionError) as err:
        parse("env.HOME")
    assert str(err.value) == "expression 'env.HOME' refers to 'env'; use params.* or steps.*"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("${{ steps.scan.output.counts.fixable > `0` }}", True),
        ("steps.scan.output.counts.fixable > `5`", False),
        ("${{ params.off }}", False),
        ("${{ params.files }}", True),
    ],
)
def test_truthy(condition: str, expected: bool) -> None:
    assert truthy(condition, CONTEXT) is expected
