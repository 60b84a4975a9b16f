"""Bounded expressions: every shape nested to 10,000 levels is an ordinary error, never a crash.

JMESPath's parser and interpreter recurse per level of the syntax tree; before the limits,
about 500 nested parentheses (1,000 ``||``) raised ``RecursionError`` inside ``validate``
(``internal error``, no ``file:line:col``) and crash-looped the watch daemon. The sweep runs
each shape through ``devskyy validate`` in a step's ``input`` and in its ``when``; the
second group proves that what the limits let through fits in a small, fixed stack budget.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import jmespath.parser
import pytest
from click.testing import CliRunner

from devskyy.cli import main
from devskyy.core.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_OPERATORS,
    ExpressionError,
    check_bounds,
    parse,
    parse_condition,
    render,
    truthy,
)

LEVELS = (100, 1_000, 10_000)

# One builder per shape: n levels of it around (or after) ``params.a``.
SHAPES: dict[str, Callable[[int], str]] = {
    "parentheses": lambda n: "(" * n + "params.a" + ")" * n,
    "not": lambda n: "!" * n + "params.a",
    "or": lambda n: " || ".join(["params.a"] * n),
    "and": lambda n: " && ".join(["params.a"] * n),
    "pipe": lambda n: " | ".join(["params.a"] * n),
    "comparison": lambda n: " == ".join(["params.a"] * n),
    "filter": lambda n: "params.a[?" * n + "b" + "]" * n,
    "function": lambda n: "abs(" * n + "params.a" + ")" * n,
    "index": lambda n: "params.a" + "[0]" * n,
    "flatten": lambda n: "params.a" + "[]" * n,
    "projection": lambda n: "params.a" + "[*]" * n,
    "object projection": lambda n: "params.a" + ".*" * n,
    "subexpression": lambda n: "params" + ".a" * n,
    "multiselect list": lambda n: "[" * n + "params.a" + "]" * n,
    # "} }", not "}}": a "}}" would end the ${{ }} template early (another error).
    "multiselect hash": lambda n: "{k: " * n + "params.a" + "} " * n,
    "expression reference": lambda n: "sort_by(params.a, " + "& " * n + "b)",
    "json literal": lambda n: "params.a || `" + "[" * n + "1" + "]" * n + "`",
    "mixed": lambda n: "(!params.a[?b] || " * n + "params.a" + ")" * n,
}

WORKFLOW = """\
apiVersion: devskyy.dev/v1
kind: Workflow
metadata:
  name: deep
spec:
  params:
    a:
      type: string
      default: x
  steps:
    - name: one
      agent: a
      {field}: '{value}'
"""

AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: a
spec:
  module: devskyy.agents.scanner:ScannerAgent
"""


def _yaml_single_quoted(text: str) -> str:
    return text.replace("'", "''")


# A chain of field names nests nothing (JMESPath keeps it flat): it is valid up to the
# length limit and refused beyond it.
FLAT = {("subexpression", 100), ("subexpression", 1_000)}


@pytest.mark.parametrize(
    ("shape", "levels"),
    [(shape, n) for shape in sorted(SHAPES) for n in LEVELS if (shape, n) not in FLAT],
)
def test_validate_refuses_deep_expressions_with_a_located_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str, levels: int
) -> None:
    monkeypatch.chdir(tmp_path)
    tree = tmp_path / "manifests"
    tree.mkdir()
    (tree / "agent.yaml").write_text(AGENT)
    expression = SHAPES[shape](levels)
    body = _yaml_single_quoted("${{ " + expression + " }}")
    (tree / "input.yaml").write_text(
        WORKFLOW.format(field="input:\n        value", value=body).replace("deep", "deep-input")
    )
    (tree / "when.yaml").write_text(WORKFLOW.format(field="when", value=body))
    result = CliRunner().invoke(main, ["validate", "manifests"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    *lines, summary = result.output.strip().splitlines()
    assert summary == "manifests: 2 problems"
    assert len(lines) == 2, result.output
    assert lines[0].startswith("manifests/input.yaml:14:9: spec.steps[0].input.value: expression ")
    assert lines[1].startswith("manifests/when.yaml:13:7: spec.steps[0].when: expression ")
    for line in lines:
        assert "the limit is" in line or "longer than the limit" in line, line
        assert len(line) < 300  # the expression is cut, not printed whole
    assert "RecursionError" not in result.output
    assert "internal error" not in result.output


def test_a_long_flat_chain_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tree = tmp_path / "manifests"
    tree.mkdir()
    (tree / "agent.yaml").write_text(AGENT)
    chain = "params" + ".a" * 1_000
    (tree / "when.yaml").write_text(WORKFLOW.format(field="when", value="${{ " + chain + " }}"))
    result = CliRunner().invoke(main, ["validate", "manifests"])
    assert (result.exit_code, result.output) == (
        0,
        "manifests: 0 roles, 0 role bindings, 1 agent, 1 workflow: valid\n",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "(" * 33 + "params.a" + ")" * 33,
            "is nested 33 levels deep; the limit is 32",
        ),
        (
            " || ".join(["params.a"] * 66),
            "has 65 operators and brackets; the limit is 64 (split it into steps)",
        ),
        ("params" + ".a" * 2100, f"is longer than the limit of {MAX_LENGTH} characters"),
    ],
)
def test_check_bounds_messages(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        check_bounds(text)
    assert str(caught.value).endswith(message)
    assert f"… ({len(text)} characters)" in str(caught.value)


def test_strings_do_not_count_but_literal_brackets_do() -> None:
    # Brackets and operators inside quoted strings are text, not structure.
    check_bounds("params.a == '" + "((((||" * 100 + "'")
    check_bounds('params."' + "[[[[" * 100 + '"')
    check_bounds('params.a || `"' + "{{{{" * 100 + '"`')
    # A JSON literal's own brackets nest (json.loads recurses on them).
    with pytest.raises(ExpressionError, match="nested 40 levels deep"):
        check_bounds("`" + "[" * 40 + "1" + "]" * 40 + "`")
    # An escaped quote does not end the string.
    check_bounds("params.a == 'it\\'s " + "(" * 100 + "'")


def test_the_limits_apply_at_run_time_too() -> None:
    deep = "(" * 1000 + "params.a" + ")" * 1000
    with pytest.raises(ExpressionError, match="the limit is 32"):
        render("${{ " + deep + " }}", {"params": {"a": 1}})
    with pytest.raises(ExpressionError, match="the limit is 32"):
        truthy(deep, {"params": {"a": 1}})
    with pytest.raises(ExpressionError, match="the limit is 64"):
        parse_condition("${{ " + "!" * 1_000 + "params.a }}")


def _frames() -> int:
    frame = sys._getframe()
    count = 0
    while frame is not None:
        count += 1
        frame = frame.f_back  # type: ignore[assignment]
    return count


@contextmanager
def _stack_budget(frames: int) -> Iterator[None]:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(_frames() + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _at_limit() -> dict[str, str]:
    d, n = MAX_DEPTH, MAX_OPERATORS
    return {
        "parentheses": "(" * d + "params.a" + ")" * d,
        "not": "!" * n + "params",
        "or": " || ".join(["params.a"] * (n // 2 + 1)),
        "pipe": " | ".join(["params.a"] * (n + 1)),
        "filter": "params.a[?" * d + "b" + "]" * d,
        "function": "abs(" * d + "params.b" + ")" * d,
        "flatten": "params.a" + "[]" * n,
        "projection": "params.a" + "[*]" * (n // 2),
        "object projection": "params.a" + ".*" * n,
        "subexpression": "params" + ".a" * ((MAX_LENGTH - 6) // 2),
        "multiselect list": "[" * d + "params.a" + "]" * d,
        "multiselect hash": "{k: " * d + "params.a" + "} " * d,
        "json literal": "params.x || `" + "[" * d + "1" + "]" * d + "`",
        "mixed": "(" * (d - 1) + "!" * (n - d) + "params" + ")" * (d - 1),
    }


@pytest.mark.parametrize("shape", sorted(_at_limit()))
def test_what_the_limits_allow_fits_a_small_stack(shape: str) -> None:
    text = _at_limit()[shape]
    check_bounds(text)  # exactly at (not past) the limits
    context = {"params": {"a": [[{"b": 1}]], "b": -2}}
    jmespath.parser.Parser.purge()  # parse for real, not from JMESPath's cache
    # 400 frames above this one: the deepest tree allowed needs about 260.
    with _stack_budget(400):
        parse(text)
        jmespath.search(text, context)
