"""Workflow data expressions: ``${{ params.x }}`` and ``${{ steps.scan.output.files }}``.

Expressions are JMESPath, never ``eval``. A string that is exactly one ``${{ … }}``
evaluates to the raw value (a list stays a list); text around expressions makes the
result a string. ``references`` tells the validator which params and steps an
expression reads, so a reference to an undeclared param or to a step outside the
step's ``needs`` is caught before anything runs.

A reference that evaluates to ``null`` is an error (``MissingInput``): a step never
silently receives nothing. Use JMESPath's ``||`` to give a default
(``${{ params.limit || `10` }}``).

Bounded input: JMESPath's parser and interpreter recurse once or more per level of the
syntax tree, and so do the reference walk here and ``json.loads`` of a backquoted literal.
Before any of them runs, ``check_bounds`` scans the text once, without recursion, and
refuses an expression longer than ``MAX_LENGTH`` characters, with brackets nested deeper
than ``MAX_DEPTH``, or with more than ``MAX_OPERATORS`` operators and brackets (a chain
such as ``a || a || …`` or ``!!!…a`` nests the tree without any bracket). Within these
limits the deepest tree costs a few hundred Python frames, far from the interpreter's
recursion limit; beyond them the error is an ordinary ``ExpressionError``.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from devskyy.errors import MissingInput

_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
ROOTS = ("params", "steps")

MAX_LENGTH = 4096
"""Characters in one expression (without ``${{ }}``)."""
MAX_DEPTH = 32
"""Brackets (``(``, ``[``, ``{``, also inside a backquoted JSON literal) open at once."""
MAX_OPERATORS = 64
"""Operators and opening brackets in one expression: each may add a level to the tree."""

_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")
_OPERATORS = frozenset("|&!<>=*([{")
_SHOWN = 60


def _sole(text: str) -> re.Match[str] | None:
    """The match when ``text`` is exactly one ``${{ … }}`` and nothing else.

    ``fullmatch`` alone is not enough: the lazy body would stretch across
    ``${{ a }}-${{ b }}`` and read it as one expression.
    """
    stripped = text.strip()
    match = _TEMPLATE.match(stripped)
    return match if match is not None and match.end() == len(stripped) else None


class ExpressionError(ValueError):
    """An expression does not parse or refers to an unknown root."""


def _shown(text: str) -> str:
    """The expression as quoted in messages: long ones are cut (they can be megabytes)."""
    if len(text) <= _SHOWN:
        return repr(text)
    return f"{text[:_SHOWN]!r}… ({len(text)} characters)"


def check_bounds(text: str) -> None:
    """Refuse an expression beyond the size, depth or operator limits; one linear pass.

    Quoted strings (``'raw'``, ``"identifier"``) and the strings inside a backquoted JSON
    literal do not count; the literal's own brackets do (``json.loads`` recurses on them).
    """
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression {_shown(text)} is longer than the limit of {MAX_LENGTH} characters"
        )
    depth = deepest = operators = 0
    quote = ""  # the quote character of the string being skipped, if any
    in_literal = False
    escaped = False
    previous = ""
    for char in text:
        before, previous = previous, char
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char == "`":
            in_literal = not in_literal
            continue
        if (char == "'" and not in_literal) or char == '"':
            quote = char
            continue
        if char in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif char in _CLOSERS:
            depth = max(0, depth - 1)
        if in_literal or char not in _OPERATORS:
            continue
        if char in "|&=" and before in "|&=!<>":
            # ``||``, ``&&``, ``==``, ``!=``, ``<=``, ``>=``: one operator, as the lexer
            # reads them (greedy pairs: ``&&&`` is ``&&`` then ``&``).
            previous = ""
            continue
        operators += 1
    if deepest > MAX_DEPTH:
        raise ExpressionError(
            f"expression {_shown(text)} is nested {deepest} levels deep; the limit is {MAX_DEPTH}"
        )
    if operators > MAX_OPERATORS:
        raise ExpressionError(
            f"expression {_shown(text)} has {operators} operators and brackets; "
            f"the limit is {MAX_OPERATORS} (split it into steps)"
        )


@dataclass(frozen=True)
class Reference:
    """What an expression reads: ``("params", "x")`` or ``("steps", "scan")``."""

    root: str
    name: str | None


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its source and what it refers to."""

    source: str
    references: frozenset[Reference]


def _root_chain(node: dict[str, Any]) -> list[str]:
    """The leading field names of a ``a.b.c`` chain evaluated against the root."""
    if node["type"] == "field":
        return [node["value"]]
    if node["type"] == "subexpression":
        left = _root_chain(node["children"][0])
        right = node["children"][1]
        if right["type"] == "field" and len(left) < 2:
            return [*left, right["value"]]
        return left
    if node["type"] in ("index_expression", "projection", "filter_projection", "flatten"):
        return _root_chain(node["children"][0]) if node["children"] else []
    return []


def _references(node: dict[str, Any], out: set[Reference]) -> None:
    kind = node["type"]
    chain = _root_chain(node)
    if chain:
        out.add(Reference(chain[0], chain[1] if len(chain) > 1 else None))
        return
    if kind in ("projection", "filter_projection", "value_projection"):
        # Only the left side is evaluated against the root; the rest is relative.
        if node["children"]:
            _references(node["children"][0], out)
        return
    for child in node.get("children", []):
        if isinstance(child, dict):
            _references(child, out)


def parse(source: str) -> Expression:
    """Parse one expression (without ``${{ }}``); raises ``ExpressionError``."""
    text = source.strip()
    if not text:
        raise ExpressionError("empty expression")
    check_bounds(text)
    try:
        ast = jmespath.compile(text).parsed
    except JMESPathError as exc:
        raise ExpressionError(f"invalid expression {_shown(text)}: {exc}") from None
    refs: set[Reference] = set()
    _references(ast, refs)
    for ref in refs:
        if ref.root not in ROOTS:
            raise ExpressionError(
                f"expression {_shown(text)} refers to {ref.root!r}; use params.* or steps.*"
            )
    return Expression(text, frozenset(refs))


def templates_in(value: Any) -> list[Expression]:
    """Every ``${{ … }}`` expression inside a JSON-like value; raises ``ExpressionError``."""
    found: list[Expression] = []
    if isinstance(value, str):
        found.extend(parse(m.group(1)) for m in _TEMPLATE.finditer(value))
        if "${{" in _TEMPLATE.sub("", value):
            raise ExpressionError(f"unclosed '${{{{' in {_shown(value)} (no matching '}}}}')")
    elif isinstance(value, dict):
        for item in value.values():
            found.extend(templates_in(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(templates_in(item))
    return found


def parse_condition(source: str) -> Expression:
    """A ``when`` condition: bare JMESPath or one ``${{ … }}``."""
    match = _sole(source)
    if match is None and "${{" in source:
        raise ExpressionError(
            f"{_shown(source.strip())} is not one ${{{{ … }}}} expression "
            "(unclosed or with text around)"
        )
    return parse(match.group(1) if match else source)


@functools.lru_cache(maxsize=4096)
def _within_bounds(text: str) -> None:
    """``check_bounds`` once per distinct text: workflows evaluate the same few expressions
    on every run (an error is not cached, so a refused text is refused every time)."""
    check_bounds(text)


def _search(expr: str, context: dict[str, Any]) -> Any:
    text = expr.strip()
    # Stored workflows were validated, but perhaps by an older version with other limits.
    _within_bounds(text)
    try:
        return jmespath.search(text, context)
    except JMESPathError as exc:
        raise ExpressionError(f"cannot evaluate {_shown(text)}: {exc}") from None


def render(value: Any, context: dict[str, Any]) -> Any:
    """Substitute every expression in ``value`` from ``context`` (``params``, ``steps``)."""
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    if not isinstance(value, str) or "${{" not in value:
        return value
    whole = _sole(value)
    if whole:
        result = _search(whole.group(1), context)
        if result is None:
            raise MissingInput(f"${{{{{whole.group(1)}}}}} evaluated to nothing")
        return result

    def one(match: re.Match[str]) -> str:
        result = _search(match.group(1), context)
        if result is None:
            raise MissingInput(f"${{{{{match.group(1)}}}}} evaluated to nothing")
        return result if isinstance(result, str) else _json_text(result)

    return _TEMPLATE.sub(one, value)


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def truthy(source: str, context: dict[str, Any]) -> bool:
    """Evaluate a ``when`` condition with JMESPath truthiness."""
    match = _sole(source)
    result = _search(match.group(1) if match else source, context)
    return result not in (None, False, "", [], {}, 0)
