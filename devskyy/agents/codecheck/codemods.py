"""libcst codemods for bandit findings whose fix is behaviour-preserving or clearly safer.

Each codemod names the bandit rule it answers and changes only the call on the reported
line, keeping comments and layout (libcst is a concrete syntax tree):

- ``B506`` ``yaml.load(stream, Loader=…)`` → ``yaml.safe_load(stream)``: the safe loader
  builds the same plain data and refuses the Python-object tags that make ``load``
  run code; with PyYAML ≥ 6 a ``load`` without a Loader does not even run.
- ``B602`` ``subprocess.run("git status --short", shell=True)`` →
  ``subprocess.run(["git", "status", "--short"])``, only when the command is one plain
  string literal of words made of ``[A-Za-z0-9_./=:,@%+-]`` and the program is not a shell
  builtin: then the shell would run exactly that argument vector, so behaviour is kept
  and the shell (and its injection risk) is gone. The one difference: a missing program
  raises ``FileNotFoundError`` instead of exiting with status 127.

Deliberately not done: ``hashlib.md5(…)`` → ``usedforsecurity=False`` only silences the
finding (it is right only if the hash is not security-relevant, which code cannot tell);
``verify=False`` → ``True`` and ``eval`` → ``ast.literal_eval`` change behaviour. Those
stay reported for a person.
"""

from __future__ import annotations

import re
from collections.abc import Collection

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

CODEMOD_RULES = frozenset({"B506", "B602"})
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_./=:,@%+-]+$")
_SUBPROCESS_FUNCS = frozenset({"run", "call", "check_call", "check_output", "Popen"})
_SHELL_BUILTINS = frozenset(
    [
        "alias",
        "bg",
        "bind",
        "break",
        "builtin",
        "cd",
        "command",
        "continue",
        "declare",
        "dirs",
        "disown",
        "echo",
        "enable",
        "eval",
        "exec",
        "exit",
        "export",
        "false",
        "fc",
        "fg",
        "getopts",
        "hash",
        "help",
        "history",
        "jobs",
        "kill",
        "let",
        "local",
        "logout",
        "popd",
        "printf",
        "pushd",
        "pwd",
        "read",
        "readonly",
        "return",
        "set",
        "shift",
        "shopt",
        "source",
        "suspend",
        "test",
        "times",
        "trap",
        "true",
        "type",
        "typeset",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "wait",
    ]
)


def _is_attr(node: cst.BaseExpression, module: str, names: Collection[str]) -> bool:
    return (
        isinstance(node, cst.Attribute)
        and isinstance(node.value, cst.Name)
        and node.value.value == module
        and node.attr.value in names
    )


def _plain_args(call: cst.Call) -> bool:
    return all(arg.star == "" for arg in call.args)


def _yaml_safe_load(call: cst.Call) -> cst.Call | None:
    if not _is_attr(call.func, "yaml", {"load"}) or not _plain_args(call):
        return None
    positional = [a for a in call.args if a.keyword is None]
    keywords = {a.keyword.value: a for a in call.args if a.keyword is not None}
    if set(keywords) - {"stream", "Loader"} or len(positional) > 2:
        return None
    if len(positional) == 2 and "Loader" in keywords:
        return None
    stream = positional[0] if positional else keywords.get("stream")
    if stream is None or (positional and "stream" in keywords):
        return None
    assert isinstance(call.func, cst.Attribute)
    return call.with_changes(
        func=call.func.with_changes(attr=cst.Name("safe_load")),
        args=[cst.Arg(value=stream.value)],
    )


def _literal_argv(node: cst.BaseExpression) -> list[str] | None:
    if not isinstance(node, cst.SimpleString) or node.prefix.lower() not in ("", "r"):
        return None
    value = node.evaluated_value
    if not isinstance(value, str):
        return None
    words = value.split()
    if not words or words[0] in _SHELL_BUILTINS or not all(_SAFE_WORD.match(w) for w in words):
        return None
    return words


def _subprocess_without_shell(call: cst.Call) -> cst.Call | None:
    if not _is_attr(call.func, "subprocess", _SUBPROCESS_FUNCS) or not _plain_args(call):
        return None
    if not call.args or call.args[0].keyword is not None:
        return None
    shell = [a for a in call.args if a.keyword is not None and a.keyword.value == "shell"]
    if len(shell) != 1 or not (
        isinstance(shell[0].value, cst.Name) and shell[0].value.value == "True"
    ):
        return None
    words = _literal_argv(call.args[0].value)
    if words is None:
        return None
    argv = cst.List(
        [cst.Element(cst.SimpleString(f'"{w}"'), comma=cst.MaybeSentinel.DEFAULT) for w in words]
    )
    kept = [call.args[0].with_changes(value=argv)]
    kept += [a for a in call.args[1:] if a is not shell[0]]
    last = kept[-1]
    if last.comma is not cst.MaybeSentinel.DEFAULT and len(kept) < len(call.args):
        # The removed shell=True was last: drop the comma it leaves dangling on one line.
        kept[-1] = last.with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return call.with_changes(args=kept)


_REWRITES = {"B506": _yaml_safe_load, "B602": _subprocess_without_shell}


class _Rewriter(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, targets: Collection[tuple[str, int]]) -> None:
        super().__init__()
        self.targets = set(targets)
        self.applied: list[tuple[str, int]] = []

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        line = self.get_metadata(PositionProvider, original_node).start.line
        for rule, rewrite in _REWRITES.items():
            if (rule, line) in self.targets:
                new = rewrite(updated_node)
                if new is not None:
                    self.applied.append((rule, line))
                    return new
        return updated_node


def rewrite(source: str, targets: Collection[tuple[str, int]]) -> tuple[str, list[tuple[str, int]]]:
    """Apply the codemods at ``(rule, line)`` targets; returns new source and what applied.

    A rewrite that would change the number of lines is refused, so line numbers reported
    by the scan stay valid for the fixer's next steps.
    """
    wanted = [(r, line) for r, line in targets if r in CODEMOD_RULES]
    if not wanted:
        return source, []
    try:
        wrapper = MetadataWrapper(cst.parse_module(source))
    except cst.ParserSyntaxError:
        return source, []
    rewriter = _Rewriter(wanted)
    new = wrapper.visit(rewriter).code
    if new.count("\n") != source.count("\n"):
        return source, []
    return new, sorted(set(rewriter.applied), key=lambda t: (t[1], t[0]))


def fixable(source: str, targets: Collection[tuple[str, int]]) -> set[tuple[str, int]]:
    """The ``(rule, line)`` targets a codemod would fix in ``source``."""
    return set(rewrite(source, targets)[1])
