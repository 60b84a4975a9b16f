"""The libcst side of ``codemods``: parsing, matching the reported calls, rewriting.

Kept apart so that importing ``codemods`` (its verdicts and rules) does not import
libcst; ``codemods.rewrite`` and ``assess`` import this module when a codemod runs.
"""

from __future__ import annotations

import re
from collections.abc import Collection

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from devskyy.agents.codecheck.codemods import (
    BEHAVIOUR_NOTE,
    CODEMOD_RULES,
    Assessment,
    Verdict,
)

_SAFE_WORD = re.compile(r"^[A-Za-z0-9_./=:,@%+-]+$")
_SUBPROCESS_FUNCS = frozenset({"run", "call", "check_call", "check_output", "Popen"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# PyYAML's own loaders that construct arbitrary Python objects (or some of them).
_UNSAFE_LOADERS = frozenset(
    {"Loader", "UnsafeLoader", "FullLoader", "CLoader", "CUnsafeLoader", "CFullLoader"}
)
# Words the shell treats itself before any program lookup (bash and POSIX sh).
_SHELL_KEYWORDS = frozenset(
    [
        *("!", "[[", "]]", "{", "}", "case", "coproc", "do", "done", "elif", "else", "esac"),
        *("fi", "for", "function", "if", "in", "select", "then", "time", "until", "while"),
    ]
)
_SHELL_BUILTINS = frozenset(
    [
        ".",
        ":",
        "[",
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


def _dotted(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None


Rewrite = tuple[cst.Call | None, Assessment | None]  # (None, None): not this rule's call


def _yaml_safe_load(call: cst.Call, _names: dict[str, str]) -> Rewrite:
    review = Assessment(Verdict.REVIEW, "not a plain yaml.load(stream[, Loader]) call")
    if not _is_attr(call.func, "yaml", {"load"}):
        return None, None
    if not _plain_args(call):
        return None, review
    positional = [a for a in call.args if a.keyword is None]
    keywords = {a.keyword.value: a for a in call.args if a.keyword is not None}
    if set(keywords) - {"stream", "Loader"} or len(positional) > 2:
        return None, review
    if len(positional) == 2 and "Loader" in keywords:
        return None, review
    stream = positional[0] if positional else keywords.get("stream")
    if stream is None or (positional and "stream" in keywords):
        return None, review
    loader_arg = positional[1] if len(positional) == 2 else keywords.get("Loader")
    if loader_arg is not None:
        loader = _dotted(loader_arg.value)
        own = loader is not None and loader.startswith("yaml.") and loader[5:] in _UNSAFE_LOADERS
        if not own:
            shown = loader or cst.Module([]).code_for_node(loader_arg.value)
            return None, Assessment(
                Verdict.REVIEW,
                f"Loader={shown} is not one of PyYAML's own unsafe loaders; a custom loader "
                "(such as a SafeLoader subclass with its own constructors) may be safe and "
                "would lose its constructors under yaml.safe_load: review it",
            )
    assert isinstance(call.func, cst.Attribute)
    new = call.with_changes(
        func=call.func.with_changes(attr=cst.Name("safe_load")),
        args=[cst.Arg(value=stream.value)],
    )
    return new, Assessment(Verdict.BEHAVIOUR, BEHAVIOUR_NOTE["B506"])


def _command_words(node: cst.BaseExpression) -> tuple[list[str] | None, str]:
    if not isinstance(node, cst.SimpleString) or node.prefix.lower() not in ("", "r"):
        return None, "the command is not one plain string literal"
    value = node.evaluated_value
    if not isinstance(value, str):
        return None, "the command is not a text literal"
    words = value.split()
    if not words:
        return None, "the command is empty"
    if not all(_SAFE_WORD.match(w) for w in words):
        return None, "the command uses shell syntax (quoting, $, globs, pipes, redirection…)"
    if _ASSIGNMENT.match(words[0]):
        return None, f"the command starts with a variable assignment ({words[0]})"
    if words[0] in _SHELL_KEYWORDS:
        return None, f"its first word `{words[0]}` is a shell keyword"
    if words[0] in _SHELL_BUILTINS:
        return None, f"its first word `{words[0]}` is a shell builtin"
    return words, ""


def _is_subprocess_call(func: cst.BaseExpression, names: dict[str, str]) -> bool:
    if _is_attr(func, "subprocess", _SUBPROCESS_FUNCS):
        return True
    return isinstance(func, cst.Name) and names.get(func.value) in _SUBPROCESS_FUNCS


def _subprocess_without_shell(call: cst.Call, names: dict[str, str]) -> Rewrite:
    def review(reason: str) -> tuple[None, Assessment]:
        return None, Assessment(Verdict.REVIEW, f"shell=True kept: {reason}")

    if not _is_subprocess_call(call.func, names):
        return None, None
    if not _plain_args(call) or not call.args or call.args[0].keyword is not None:
        return review("the command is not the first positional argument")
    shell = [a for a in call.args if a.keyword is not None and a.keyword.value == "shell"]
    if len(shell) != 1 or not (
        isinstance(shell[0].value, cst.Name) and shell[0].value.value == "True"
    ):
        return review("shell is not the literal True")
    if any(a.keyword is not None and a.keyword.value == "executable" for a in call.args):
        return review("executable= names the shell (or program) that runs the command")
    words, why = _command_words(call.args[0].value)
    if words is None:
        return review(why)
    argv = cst.List(
        [cst.Element(cst.SimpleString(f'"{w}"'), comma=cst.MaybeSentinel.DEFAULT) for w in words]
    )
    kept = [call.args[0].with_changes(value=argv)]
    kept += [a for a in call.args[1:] if a is not shell[0]]
    last = kept[-1]
    if last.comma is not cst.MaybeSentinel.DEFAULT and len(kept) < len(call.args):
        # The removed shell=True was last: drop the comma it leaves dangling on one line.
        kept[-1] = last.with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return call.with_changes(args=kept), Assessment(
        Verdict.EQUIVALENT, "the shell would run exactly this argument vector"
    )


_REWRITES = {"B506": _yaml_safe_load, "B602": _subprocess_without_shell}


def _subprocess_names(module: cst.Module) -> dict[str, str]:
    """Local name -> subprocess function, from top-level ``from subprocess import …``."""
    names: dict[str, str] = {}
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if not isinstance(small, cst.ImportFrom) or isinstance(small.names, cst.ImportStar):
                continue
            if small.relative or _dotted(small.module or cst.Name("_")) != "subprocess":
                continue
            for alias in small.names:
                if isinstance(alias.name, cst.Name):
                    local = alias.asname.name if alias.asname else alias.name
                    if isinstance(local, cst.Name):
                        names[local.value] = alias.name.value
    return names


class _Rewriter(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(
        self,
        targets: Collection[tuple[str, int]],
        allowed: Collection[Verdict],
        names: dict[str, str],
    ) -> None:
        super().__init__()
        self.targets = set(targets)
        self.allowed = set(allowed)
        self.names = names
        self.applied: list[tuple[str, int]] = []
        self.assessed: dict[tuple[str, int], Assessment] = {}

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        # bandit names a call spread over several lines by one of them (not always the
        # first): a target anywhere in the call's lines is this call's.
        span = self.get_metadata(PositionProvider, original_node)
        for rule, rewrite in _REWRITES.items():
            lines = [
                n for n in range(span.start.line, span.end.line + 1) if (rule, n) in self.targets
            ]
            if not lines:
                continue
            new, assessment = rewrite(updated_node, self.names)
            if assessment is None:  # not a call this rule is about (such as .stdout's)
                continue
            target = (rule, lines[0])
            if target in self.assessed:  # an inner call of the rule's kind came first
                continue
            self.assessed[target] = assessment
            if new is not None and assessment.verdict in self.allowed:
                self.applied.append(target)
                return new
        return updated_node


def run(
    source: str, targets: Collection[tuple[str, int]], allowed: Collection[Verdict]
) -> tuple[str, _Rewriter] | None:
    wanted = [(r, line) for r, line in targets if r in CODEMOD_RULES]
    if not wanted:
        return None
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError:
        return None
    rewriter = _Rewriter(wanted, allowed, _subprocess_names(module))
    return MetadataWrapper(module).visit(rewriter).code, rewriter
