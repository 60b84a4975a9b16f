"""What an answer shows of server paths: workspace-relative text, or ``<server path>``.

Agents report absolute paths (the scanner's ``target_path``, the fixer's
``backup_path``), and the run store keeps them as reported: the CLI and ``devskyy
restore`` need them. An HTTP client must not learn the server's filesystem layout, so
every run view, task result, agent result and history row an API route or dashboard page
returns goes through ``ShownPaths.shown`` first:

- A string value (or mapping key) that **is** an absolute path, on one line, is shown
  relative to the workspace root it lies in, in the form the API takes as input: under
  the first root, relative to it (``pkg/a.py``; the root itself ``.``); under another
  root, ``<workspace N>/rest`` (N counts ``--workspace`` from 1; no relative form reaches
  a root but the first). Matching is lexical, after ``..`` and ``.`` are folded, against
  each root as configured and with its symbolic links followed.
- Any other absolute path (the state folder, backups, a program) becomes ``OUTSIDE``.
- Text that merely holds a path is left alone (code lines, unified diffs, whose
  ``--- a/…`` headers are relative already, must survive ``git apply``), except the
  messages devskyy writes itself: the values under ``MESSAGE_KEYS`` (an agent's
  ``headline``, a step's ``error`` and ``reason``, a result's ``errors``), where each
  absolute path that stands as a word (after a space, a bracket, a quote, ``=`` or ``,``)
  is shown by the same rule.

Pure but for ``ShownPaths.of``, which resolves the roots once (the app builds one per
``ApiContext``). Nothing is copied when nothing changes. Error bodies are cleaned separately
(``api/boundary.py``: workspace roots inside error text read ``<workspace>``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUTSIDE = "<server path>"
"""What an absolute path outside every workspace root is shown as."""

MESSAGE_KEYS = frozenset({"headline", "error", "errors", "reason"})
"""Keys whose values are messages for people: paths inside their text are shown too."""

MAX_SHOWN_DEPTH = 200
"""Levels walked (twice every input limit); a deeper subtree is shown as ``OUTSIDE``."""

# An absolute path standing as a word: at the start or after a space, bracket, quote,
# "=" or ","; it ends at a space, quote, bracket, comma, semicolon or colon. A "/" after
# ":" or a letter is not a word (URLs, relative paths, "and/or"), nor a "/" alone.
_WORD = re.compile(r"(?<![^\s(\[{'\"=,])/(?!/)[^\s'\"()\[\]{}<>,;:]+")
_LINE_BREAKS = ("\n", "\r")


def _is_path(text: str) -> bool:
    return text.startswith("/") and not any(b in text for b in _LINE_BREAKS)


@dataclass(frozen=True)
class ShownPaths:
    """The workspace roots as answers name them; ``shown`` rewrites a JSON-like value.

    ``prefixes`` pairs each root's absolute text (as configured and resolved, first root
    first) with how it is shown (``""`` for the first root, ``<workspace N>`` for the others).
    """

    prefixes: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, roots: Iterable[Path]) -> ShownPaths:
        """From the configured roots; each is resolved once here, never per answer."""
        prefixes: list[tuple[str, str]] = []
        for number, root in enumerate(roots, start=1):
            label = "" if number == 1 else f"<workspace {number}>"
            for form in (os.path.abspath(root), str(Path(root).resolve())):
                if (form, label) not in prefixes:
                    prefixes.append((form, label))
        return cls(tuple(prefixes))

    def path(self, text: str) -> str:
        """``text`` as an answer shows it (unchanged unless it is an absolute path)."""
        if not _is_path(text):
            return text
        folded = os.path.normpath("/" + text.lstrip("/"))
        for root, label in self.prefixes:
            if folded == root:
                return label or "."
            base = root.rstrip("/") + "/"
            if folded.startswith(base):
                rest = folded[len(base) :]
                return f"{label}/{rest}" if label else rest
        return OUTSIDE

    def message(self, text: str) -> str:
        """A message with every absolute path in it that stands as a word shown."""
        if "/" not in text:
            return text
        return _WORD.sub(lambda m: self._word(m.group()), text)

    def _word(self, word: str) -> str:
        stripped = word.rstrip(".")  # the end of a sentence, not of the path
        if not stripped:
            return word
        return self.path(stripped) + word[len(stripped) :]

    def shown(self, value: Any, *, message: bool = False) -> Any:
        """``value`` with its paths shown (the same object when none is absolute).

        ``message``: ``value`` is a message (its path words are shown, as under
        ``MESSAGE_KEYS``).
        """
        return self._walk(value, message, 0)

    def _text(self, text: str, message: bool) -> str:
        if message:
            return self.message(text)
        return self.path(text)

    def _walk(self, value: Any, message: bool, depth: int) -> Any:
        # Exact types first: a run view is thousands of small values, and this is the
        # one pass over all of them (benchmarks/bench_paths_out.py).
        kind = type(value)
        if kind is str:
            if message:
                return self.message(value) if "/" in value else value
            return self.path(value) if value[:1] == "/" else value
        if kind is dict:
            return self._mapping(value, message, depth)
        if kind is list or kind is tuple:
            return self._items(value, message, depth)
        if value is None or kind is bool or kind is int or kind is float:
            return value
        if isinstance(value, str):
            return self._text(value, message)
        if isinstance(value, dict):
            return self._mapping(value, message, depth)
        if isinstance(value, list | tuple):
            return self._items(value, message, depth)
        return value

    def _items(self, value: list[Any] | tuple[Any, ...], message: bool, depth: int) -> Any:
        if depth >= MAX_SHOWN_DEPTH:
            return OUTSIDE
        walk, below = self._walk, depth + 1
        items = [walk(v, message, below) for v in value]
        for new, old in zip(items, value, strict=True):
            if new is not old:
                return items
        return value

    def _mapping(self, value: dict[Any, Any], message: bool, depth: int) -> Any:
        if depth >= MAX_SHOWN_DEPTH:
            return OUTSIDE
        walk, below = self._walk, depth + 1
        changed = renamed = False
        out: dict[Any, Any] = {}
        for key, item in value.items():
            new_key = key
            if type(key) is str and key[:1] == "/":
                new_key = self.path(key)
                renamed = True
            if renamed and new_key in out:
                new_key = _unique(new_key, out)  # two outside paths, say: keep both
            inner = message or key in MESSAGE_KEYS
            if type(item) is str:  # most values: no call per leaf
                if inner:
                    new_item = self.message(item) if "/" in item else item
                else:
                    new_item = self.path(item) if item[:1] == "/" else item
            else:
                new_item = walk(item, inner, below)
            if new_key is not key or new_item is not item:
                changed = True
            out[new_key] = new_item
        return out if changed else value


def _unique(key: str, taken: dict[Any, Any]) -> str:
    number = 2
    while f"{key} #{number}" in taken:
        number += 1
    return f"{key} #{number}"
