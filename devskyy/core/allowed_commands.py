"""Which command lines an HTTP request may name: the operator's ``--allow-command`` list.

A command input (``ServerCommand``, such as ``scan_and_fix``'s ``verify_command``) runs a
program on the server, so the HTTP API refuses one by default. The operator of
``devskyy serve`` may list exact command lines; a request may then name one of them.
"Exact" is decided on the words the agent runs, not on the text: both are split as the
verifier splits a command (``shlex``, as a POSIX shell splits words, no expansion) and
the two argument lists must be equal. No prefix, no pattern: ``pytest -q -x`` is not
``pytest -q``.

``match`` answers with the operator's own text, which the API passes on in place of the
request's: what runs is then always a line the operator wrote, even when the workflow
hands it to ``/bin/sh -c`` (where quoting that splits into the same words could still
mean something else to the shell).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable


class BadAllowedCommand(ValueError):
    """An ``--allow-command`` value that names no command (empty, or unsplittable)."""


def words(command: str) -> list[str] | None:
    """``command`` split into words as the verifier splits it; None when it cannot be."""
    try:
        return shlex.split(command)
    except ValueError:
        return None


def checked(commands: Iterable[str]) -> tuple[str, ...]:
    """The operator's list, each checked to split into at least one word (in order,
    duplicates dropped); ``BadAllowedCommand`` names the first that does not."""
    out: list[str] = []
    for command in commands:
        split = words(command)
        if not split:
            why = "is empty" if split == [] else "cannot be split into words (an open quote?)"
            raise BadAllowedCommand(f"{command!r} {why}")
        if command not in out:
            out.append(command)
    return tuple(out)


def match(value: object, allowed: Iterable[str]) -> str | None:
    """The allowed command whose words equal ``value``'s, or None (not text, not
    splittable, or no such command)."""
    if not isinstance(value, str):
        return None
    asked = words(value)
    if not asked:
        return None
    for command in allowed:
        if words(command) == asked:
            return command
    return None
