"""AST checks for performance problems that ruff and bandit do not report.

- ``DS101`` cyclomatic complexity of a function over a threshold (McCabe: 1 + branches);
  only by devskyy's policy: a project with its own ruff configuration judges complexity
  with ruff's ``C901`` when it selects it.
- ``DS102`` a membership test (``x in names``) inside a loop, where ``names`` is a local
  that is only ever bound to a list: O(len) per iteration, so O(n·m) overall; a set is O(1).
- ``DS103`` ``s += "..."`` inside a loop where ``s`` is only ever a string: each step may
  copy the whole string; ``"".join(parts)`` is linear.

Only what can be decided reliably from one function's syntax is reported: a name counts
as a list or a string only when every binding of it in that scope says so.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from devskyy.agents.codecheck.issues import Issue, Severity, Tool

DEFAULT_MAX_COMPLEXITY = 10
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_BRANCHES = (
    ast.If,
    ast.IfExp,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.ExceptHandler,
    ast.match_case,
    ast.Assert,
)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass(frozen=True)
class PerfSettings:
    # None: no DS101. devskyy's threshold is its policy for a project without a ruff
    # configuration; a project with one decides complexity there (C901, max-complexity).
    max_complexity: int | None = DEFAULT_MAX_COMPLEXITY


@dataclass
class _Scope:
    """A module, function, class or lambda, with the nodes it owns (not its nested scopes').

    ``nodes`` pairs each owned node with whether it runs once per iteration of a loop or
    comprehension of this scope.
    """

    node: ast.AST
    nodes: list[tuple[ast.AST, bool]] = field(default_factory=list)


_NO_IDS: frozenset[int] = frozenset()


def _per_iteration(parent: ast.AST) -> frozenset[int]:
    """ids of the children of ``parent`` evaluated once per iteration of it."""
    if isinstance(parent, _LOOPS):
        return frozenset(map(id, parent.body))
    if isinstance(parent, ast.DictComp):
        return frozenset((id(parent.key), id(parent.value)))
    if isinstance(parent, ast.ListComp | ast.SetComp | ast.GeneratorExp):
        return frozenset((id(parent.elt),))
    if isinstance(parent, ast.comprehension):
        return frozenset(map(id, parent.ifs))
    return _NO_IDS


_ITERATING = (*_LOOPS, ast.DictComp, ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.comprehension)


def _children(node: ast.AST) -> list[ast.AST]:
    """``list(ast.iter_child_nodes(node))``, without a generator per node."""
    out: list[ast.AST] = []
    append = out.append
    node_type = ast.AST
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, node_type):
                    append(item)
        elif isinstance(value, node_type):
            append(value)
    return out


def _index(tree: ast.AST) -> list[_Scope]:
    """Every scope of ``tree`` with its own nodes, in one pass (no recursion).

    The hot loop of the AST checks (every node of every file): node kinds are tested
    once per class (``kinds`` caches whether a class opens a scope or iterates), not
    with ``isinstance`` on every node.
    """
    root = _Scope(tree)
    scopes = [root]
    kinds: dict[type, tuple[bool, bool]] = {}  # class -> (opens a scope, iterates)
    stack: list[tuple[ast.AST, _Scope, bool]] = [(tree, root, False)]
    while stack:
        node, scope, looped = stack.pop()
        kind = kinds.get(type(node))
        if kind is None:
            kind = kinds[type(node)] = (isinstance(node, _SCOPES), isinstance(node, _ITERATING))
        repeated = _per_iteration(node) if kind[1] else _NO_IDS
        own = scope.nodes
        for child in _children(node):
            in_loop = looped or (bool(repeated) and id(child) in repeated)
            own.append((child, in_loop))
            child_kind = kinds.get(type(child))
            if child_kind is None:
                child_kind = kinds[type(child)] = (
                    isinstance(child, _SCOPES),
                    isinstance(child, _ITERATING),
                )
            if child_kind[0]:
                inner = _Scope(child)
                scopes.append(inner)
                stack.append((child, inner, False))
            else:
                stack.append((child, scope, in_loop))
    return scopes


def _own_nodes(scope: ast.AST) -> list[ast.AST]:
    """Nodes of ``scope`` without descending into nested functions, classes or lambdas."""
    return [node for node, _ in _index(scope)[0].nodes]


def complexity(
    func: ast.FunctionDef | ast.AsyncFunctionDef, nodes: Sequence[ast.AST] | None = None
) -> int:
    """McCabe cyclomatic complexity: 1 plus one per decision point."""
    score = 1
    for node in _own_nodes(func) if nodes is None else nodes:
        if isinstance(node, _BRANCHES):
            score += 1
        elif isinstance(node, ast.comprehension):
            score += 1 + len(node.ifs)
        elif isinstance(node, ast.BoolOp):
            score += len(node.values) - 1
        elif isinstance(node, ast.Try) and node.orelse:
            score += 1
    return score


def _kind(value: ast.expr | None) -> str | None:
    """``"list"``/``"str"`` when an expression certainly builds one, else None."""
    if isinstance(value, ast.List | ast.ListComp):
        return "list"
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
        if value.func.id in ("list", "sorted"):
            return "list"
        if value.func.id == "str":
            return "str"
    if isinstance(value, ast.JoinedStr) or (
        isinstance(value, ast.Constant) and isinstance(value.value, str)
    ):
        return "str"
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
        left, right = _kind(value.left), _kind(value.right)
        return left if left == right else None
    return None


def _annotation_kind(annotation: ast.expr | None) -> str | None:
    node = annotation.value if isinstance(annotation, ast.Subscript) else annotation
    if isinstance(node, ast.Name):
        return {"list": "list", "List": "list", "str": "str"}.get(node.id)
    return None


def _name_kinds(scope: ast.AST, nodes: Sequence[ast.AST]) -> dict[str, str]:
    """Names whose every binding in ``scope`` is a list (or every one a string)."""
    kinds: dict[str, set[str | None]] = {}

    def bind(name: str, kind: str | None) -> None:
        kinds.setdefault(name, set()).add(kind)

    if isinstance(scope, _FUNCS):
        args = scope.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
            bind(arg.arg, _annotation_kind(arg.annotation))
        for extra in (args.vararg, args.kwarg):
            if extra is not None:
                bind(extra.arg, None)
    for node in nodes:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        single = isinstance(target, ast.Name)
                        bind(name.id, _kind(node.value) if single else None)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            kind = _kind(node.value) if node.value else _annotation_kind(node.annotation)
            bind(node.target.id, kind)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            kind = _kind(node.value)
            bind(node.target.id, kind if kind == "str" else None)
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension | ast.withitem):
            bound = node.optional_vars if isinstance(node, ast.withitem) else node.target
            for sub in ast.walk(bound) if bound is not None else ():
                if isinstance(sub, ast.Name):
                    bind(sub.id, None)
        elif isinstance(node, ast.NamedExpr):
            bind(node.target.id, _kind(node.value))
        elif isinstance(node, ast.Global | ast.Nonlocal):
            for name_id in node.names:
                bind(name_id, None)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Del):
            bind(node.id, None)
    certain: dict[str, str] = {}
    for name_id, seen in kinds.items():
        only = next(iter(seen))
        if len(seen) == 1 and only is not None:
            certain[name_id] = only
    return certain


def _scope_issues(scope: _Scope, file: str) -> list[Issue]:
    looped = [node for node, in_loop in scope.nodes if in_loop]
    if not looped:
        return []
    kinds = _name_kinds(scope.node, [node for node, _ in scope.nodes])
    found: list[Issue] = []
    for node in looped:
        if isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators, strict=True):
                if (
                    isinstance(op, ast.In | ast.NotIn)
                    and isinstance(right, ast.Name)
                    and kinds.get(right.id) == "list"
                ):
                    found.append(
                        Issue(
                            file=file,
                            line=node.lineno,
                            column=node.col_offset + 1,
                            rule="DS102",
                            tool=Tool.AST.value,
                            severity=Severity.MEDIUM.value,
                            message=(
                                f"membership test on list `{right.id}` inside a loop is "
                                "O(n) per iteration; build a set once before the loop"
                            ),
                        )
                    )
        elif (
            isinstance(node, ast.AugAssign)
            and isinstance(node.op, ast.Add)
            and isinstance(node.target, ast.Name)
            and kinds.get(node.target.id) == "str"
        ):
            found.append(
                Issue(
                    file=file,
                    line=node.lineno,
                    column=node.col_offset + 1,
                    rule="DS103",
                    tool=Tool.AST.value,
                    severity=Severity.LOW.value,
                    message=(
                        f"string `{node.target.id}` grows by `+=` inside a loop, which may "
                        "copy it each time; collect the parts and use ''.join()"
                    ),
                )
            )
    return list(dict.fromkeys(found))


# CPython 3.11/3.12 keep the AST builder's recursion depth in shared state: two threads
# parsing at once fail with "SystemError: AST constructor recursion depth mismatch"
# (seen when the fixer's rescan checked several files in worker threads). Every parse
# in codecheck takes this lock.
PARSE_LOCK = threading.Lock()


def parse(source: str, file: str = "<unknown>") -> ast.Module:
    """``ast.parse`` under ``PARSE_LOCK``."""
    with PARSE_LOCK:
        return ast.parse(source, filename=file)


def check_source(source: str, file: str, settings: PerfSettings) -> list[Issue]:
    """Every DS1xx issue of one module (a syntax error yields none: ruff reports it)."""
    try:
        tree = parse(source, file)
    except (SyntaxError, ValueError):
        return []
    found: list[Issue] = []
    for scope in _index(tree):
        found += _scope_issues(scope, file)
        node = scope.node
        limit = settings.max_complexity
        if limit is not None and isinstance(node, _FUNCS):
            score = complexity(node, [n for n, _ in scope.nodes])
            if score > limit:
                found.append(
                    Issue(
                        file=file,
                        line=node.lineno,
                        column=node.col_offset + 1,
                        rule="DS101",
                        tool=Tool.AST.value,
                        severity=Severity.MEDIUM.value,
                        message=(
                            f"`{node.name}` has cyclomatic complexity {score} "
                            f"(more than {limit}); split it up"
                        ),
                    )
                )
    return sorted(found, key=lambda i: (i.line, i.column, i.rule))
