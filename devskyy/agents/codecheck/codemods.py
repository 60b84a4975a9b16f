"""libcst codemods for two bandit findings: what is provably the same, or unsafe by definition.

Each codemod names the bandit rule it answers and changes only the call on the reported
line, keeping comments and layout (libcst is a concrete syntax tree). ``assess`` says,
for each finding, which of three cases it is, and why:

- ``EQUIVALENT`` (applied by ``fix_type: auto`` and ``security``): ``B602``
  ``subprocess.run("git status --short", shell=True)`` →
  ``subprocess.run(["git", "status", "--short"])``, only when the command is one plain
  string literal of words made of ``[A-Za-z0-9_./=:,@%+-]`` (no quoting, expansion,
  globbing, redirection, pipes or separators: no shell syntax), whose first word is not an
  assignment (``FOO=bar env`` sets a variable for ``env``), not a shell keyword (``time``,
  ``if``, ``!``…) and not a builtin (``cd``, ``echo``, ``.``…), in a call without
  ``executable=`` (``Popen("ls", shell=True, executable="/bin/bash")`` runs bash, not
  ls). Then ``/bin/sh -c`` would run exactly that argument vector. The one difference: a
  missing program raises ``FileNotFoundError`` instead of exiting with status 127.
  ``run`` may be ``subprocess.run`` or a name imported with ``from subprocess import``.
- ``BEHAVIOUR`` (applied only by ``fix_type: security``, and labelled so in the fix):
  ``B506`` ``yaml.load(stream)`` or ``yaml.load(stream, Loader=<one of PyYAML's own
  unsafe loaders>)`` → ``yaml.safe_load(stream)``. This is what makes the code safe, and
  it changes behaviour by definition: ``!!python/*`` tags are refused (and with
  PyYAML ≥ 6 a ``load`` without a Loader raised ``TypeError`` before).
- ``REVIEW``: everything else, never edited. The reason says why, for example a custom
  loader (``Loader=IncludeLoader`` may be a ``SafeLoader`` subclass with its own
  constructors, which ``safe_load`` would drop) or a command with shell syntax.

libcst is imported only when a codemod runs (``codemods_cst``): starting an agent
does not pay for it.

Deliberately not done: ``hashlib.md5(…)`` → ``usedforsecurity=False`` only silences the
finding (it is right only if the hash is not security-relevant, which code cannot tell);
``verify=False`` → ``True`` and ``eval`` → ``ast.literal_eval`` change behaviour. Those
stay reported for a person.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

CODEMOD_RULES = frozenset({"B506", "B602"})


class Verdict(StrEnum):
    """What the fixer may do with one finding."""

    EQUIVALENT = "equivalent"  # same behaviour, proven from the code: fix_type auto
    BEHAVIOUR = "behaviour"  # safer by definition, behaviour changes: fix_type security only
    REVIEW = "review"  # never edited: a person decides


@dataclass(frozen=True)
class Assessment:
    """A codemod's answer for one ``(rule, line)``: the verdict and the reason."""

    verdict: Verdict
    reason: str


# The start of the ``action`` of a finding only ``fix_type: security`` fixes.
SECURITY_FIX_ACTION = "fix_type: security rewrites it"
BEHAVIOUR_NOTE = {
    "B506": ("behaviour change: yaml.safe_load refuses the !!python/* tags this loader accepted"),
}


def rewrite(
    source: str,
    targets: Collection[tuple[str, int]],
    allowed: Collection[Verdict] = (Verdict.EQUIVALENT,),
) -> tuple[str, list[tuple[str, int]]]:
    """Apply the codemods whose verdict is ``allowed`` at ``(rule, line)`` targets;
    returns the new source and what applied.

    A rewrite that would change the number of lines is refused, so line numbers reported
    by the scan stay valid for the fixer's next steps.
    """
    from devskyy.agents.codecheck.codemods_cst import run  # noqa: PLC0415 - libcst on use

    done = run(source, targets, allowed)
    if done is None:
        return source, []
    new, rewriter = done
    if new.count("\n") != source.count("\n"):
        return source, []
    return new, sorted(set(rewriter.applied), key=lambda t: (t[1], t[0]))


def assess(source: str, targets: Collection[tuple[str, int]]) -> dict[tuple[str, int], Assessment]:
    """What each ``(rule, line)`` target is (equivalent, behaviour-changing, or for review)."""
    from devskyy.agents.codecheck.codemods_cst import run  # noqa: PLC0415 - libcst on use

    done = run(source, targets, ())
    if done is None:
        return {}
    return done[1].assessed
