"""Docs that cannot drift: every ``console`` block of README.md, CONTRIBUTING.md and docs/
whose commands run offline is run here, and what it prints is compared with the page.

Each page gets a scratch folder holding a copy of the shipped ``manifests/`` and
``examples/`` and its own store (the default ``./.devskyy``); its blocks run in order in
that folder, as a reader would type them, through ``bash`` (so ``KEY=$(…)`` and
``echo $?`` work), stdout and stderr together as a terminal shows them. A command shown
with output must print exactly that, allowing ids, times and durations to vary
(``normalize``); a command shown without output must only run. A block is skipped only
for a reason listed in ``SKIP`` (it needs a network, a server, root, a crash, or ids from
another run); ``test_most_blocks_run`` keeps that list from swallowing the pages.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    "README.md",
    "CONTRIBUTING.md",
    *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")),
]

# (page, text in the block's first command) -> why the block cannot run offline here.
SKIP: dict[tuple[str, str], str] = {
    ("README.md", "devskyy run ecommerce_order"): "placeholders (ID, RUN_ID) for other runs",
    ("README.md", "devskyy keys create ci-bot"): "placeholder KEY_ID",
    ("README.md", "devskyy watch"): "a daemon that runs until stopped",
    ("docs/api.md", "devskyy keys create ops"): "a server and curl",
    ("docs/api.md", "curl"): "a server and curl",
    ("docs/cli.md", "devskyy --state sqlite:////srv"): "a store under /srv and a PostgreSQL server",
    ("docs/cli.md", "devskyy watch"): "a daemon that runs until stopped",
    ("docs/cli.md", "devskyy run long"): "a run killed with SIGKILL, and its ids",
    ("docs/cli.md", "devskyy restore"): "a fixer backup of another run (its id)",
    ("docs/cli.md", "devskyy audit --type key.revoked"): "the audit log of a longer session",
    ("docs/cli.md", "devskyy unblock"): "a block made by failed logins against a server",
    ("docs/cli.md", "devskyy serve"): "a server and curl",
    ("docs/cli.md", "devskyy --state sqlite:///state.db history"): "a store written by 0.1.0",
    ("docs/security.md", "devskyy keys rotate"): "the ids of keys created elsewhere",
    ("docs/security.md", "devskyy audit --verify"): "rows edited by hand in SQLite",
    ("docs/security.md", "devskyy audit checkpoint"): "rows deleted by hand, a folder in /srv",
    ("docs/security.md", "devskyy audit --limit"): "the audit log of a longer session",
    ("docs/security.md", "devskyy serve"): "a server and curl",
    ("docs/security.md", "for i in"): "a server and curl",
    ("docs/ui.md", "devskyy keys create alice"): "a server and a browser",
    ("CONTRIBUTING.md", ".venv/bin/python -m devskyy.model.schemas"): "rewrites this checkout",
}

# Programs a block may call that need a network, root or a cluster.
NOT_OFFLINE = {
    "pip": "the package index",
    "curl": "a server",
    "ssh": "another machine",
    "sudo": "root",
    "systemctl": "systemd",
    "journalctl": "systemd",
    "dask": "a Dask cluster",
    "psql": "a PostgreSQL server",
}

# A 12-character id (key, run): key ids may have no digit and run ids no letter, so
# any such word counts; the page and the output are normalized alike.
_ID = re.compile(r"\b[a-z0-9]{12}\b")
_KEY = re.compile(r"dsk_[A-Za-z0-9]+_[A-Za-z0-9]+")
_STAMP = re.compile(
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?|\b\d\d:\d\d:\d\d\b"
)
_DURATION = re.compile(r"\b\d+\.\d+s\b")
_HASH = re.compile(r"\b[0-9a-f]{16,64}\b")


def normalize(text: str, scratch: Path) -> list[str]:
    """Lines with ids, keys, times, durations and hashes made uniform, and paths in the
    scratch folder relative to it (the page's reader runs from their own folder)."""
    text = text.replace(f"{scratch}/", "").replace(str(scratch), ".")  # as the reader's cwd
    for pattern, token in (
        (_KEY, "<KEY>"),
        (_STAMP, "<TIME>"),
        (_HASH, "<HASH>"),
        (_ID, "<ID>"),
        (_DURATION, "<S>"),
    ):
        text = pattern.sub(token, text)
    return [line.rstrip() for line in text.rstrip("\n").splitlines()]


@dataclass
class Command:
    text: str
    expected: list[str] = field(default_factory=list)
    raw: bool = False  # a file's text: no "  # comment" to strip


@dataclass
class Block:
    page: str
    line: int
    commands: list[Command]

    @property
    def skip(self) -> str | None:
        first = self.commands[0].text if self.commands else ""
        for (page, start), why in SKIP.items():
            if page == self.page and first.startswith(start):
                return why
        for command in self.commands:  # whatever any page may add later
            text = _strip_comment(command.text)
            if text.endswith("&"):
                return "starts a background process"
            if text.split(" ", 1)[0] in NOT_OFFLINE:
                return f"{text.split(' ', 1)[0]}: {NOT_OFFLINE[text.split(' ', 1)[0]]}"
            if re.match(r"devskyy (serve|watch|worker)\b", text):
                return "a server or daemon that runs until stopped"
        return None


FILE_MARK = re.compile(r"^<!-- file: (\S+) -->$")


def _file_block(page: str, lines: list[str], fence: int, path: str) -> tuple[Block, int]:
    """A fenced block marked ``<!-- file: PATH -->``: a command that writes it there."""
    end = fence + 1
    while lines[end].strip() != "```":
        end += 1
    body = "\n".join(lines[fence + 1 : end])
    folder = os.path.dirname(path) or "."
    write = f"mkdir -p {folder} && cat > {path} <<'DOCS_EOF'\n{body}\nDOCS_EOF"
    return Block(page, fence + 2, [Command(write, raw=True)]), end + 1


def blocks(page: str) -> list[Block]:
    """The console blocks of a page: ``$ `` commands (``\\`` continues) and their output,
    and the fenced blocks marked ``<!-- file: PATH -->`` (files the examples use)."""
    found: list[Block] = []
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        marked = FILE_MARK.match(lines[index].strip())
        if marked and index + 1 < len(lines) and lines[index + 1].startswith("```"):
            block, index = _file_block(page, lines, index + 1, marked.group(1))
            found.append(block)
            continue
        if lines[index].strip() != "```console":
            index += 1
            continue
        start, index = index + 1, index + 1
        commands: list[Command] = []
        while index < len(lines) and lines[index].strip() != "```":
            line = lines[index]
            if line.startswith("$ "):
                text = line[2:]
                while text.endswith("\\") and index + 1 < len(lines):
                    index += 1
                    text = text[:-1] + " " + lines[index].strip()
                commands.append(Command(text))
            elif line.startswith("# ") and not commands:
                pass  # a root prompt: such blocks have no `$ ` command and never run
            elif commands:
                commands[-1].expected.append(line)
            index += 1
        found.append(Block(page, start, commands))
        index += 1
    return [b for b in found if b.commands]


def _strip_comment(command: str) -> str:
    """``devskyy plan   # why`` -> ``devskyy plan`` (a comment after two spaces and #);
    a line that is only a comment (``$ # after editing …``) does nothing."""
    text = re.split(r"\s{2,}#\s", command, maxsplit=1)[0].strip()
    return ":" if not text or text.startswith("#") else text


def _run_block(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One block in its own process group, which is ended afterwards: nothing it started
    may outlive it (a page's example that forgets to stop a server must not leak one)."""
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_page(
    page: str, scratch: Path, *, raw: bool = False
) -> list[tuple[Block, Command, list[str]]]:
    """Run every block of ``page`` that is not skipped; (block, command, output lines)."""
    shutil.copytree(ROOT / "manifests", scratch / "manifests")
    shutil.copytree(ROOT / "examples", scratch / "examples")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DEVSKYY_", "PYTEST_", "COV_"))
    }
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="80",
        PYTHONUNBUFFERED="1",
        HOME=str(scratch),
    )
    # The shell's folder and exported variables carry from block to block, as in the
    # reader's terminal (`cd project`, `export DEVSKYY_ALLOWED_MODULES=...`).
    state = scratch / ".docs-shell"
    state.write_text(f"cd {scratch}\n")
    results: list[tuple[Block, Command, list[str]]] = []
    for block in blocks(page):
        if block.skip:
            continue
        marker = "@@devskyy-docs@@"
        # The marker must not reset $? (a page shows `echo $?` after a failing command).
        mark = f'__rc=$?; echo {marker}; (exit "$__rc")'
        steps = [
            f"{mark}\n{c.text}" if c.raw else f"{mark}\n{{ {_strip_comment(c.text)}\n}} 2>&1"
            for c in block.commands
        ]
        save = f'{{ export -p; echo "cd $(printf %q "$PWD")"; }} > {state}'
        script = "\n".join([f"source {state}", *steps, save])
        done = _run_block(script, scratch, env)
        outputs = done.stdout.split(marker + "\n")[1:]
        assert len(outputs) == len(block.commands), (block.page, block.line, done.stderr)
        for command, output in zip(block.commands, outputs, strict=True):
            lines = output.rstrip("\n").splitlines() if raw else normalize(output, scratch)
            results.append((block, command, lines))
    return results


def matches(expected: list[str], actual: list[str]) -> bool:
    """``actual`` is what ``expected`` shows; a line ``…`` stands for any lines (an excerpt)
    and ``…`` inside a line for any text."""
    parts = []
    for line in expected:
        if line.strip() == "…":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*".join(re.escape(piece) for piece in line.split("…")) + r"\n")
    return re.fullmatch("".join(parts), "".join(f"{line}\n" for line in actual)) is not None


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("page", PAGES)
def test_console_examples_print_what_the_page_shows(page: str, tmp_path: Path) -> None:
    mismatches = []
    for block, command, actual in run_page(page, tmp_path):
        if not command.expected:
            continue
        expected = normalize("\n".join(command.expected), tmp_path)
        if not matches(expected, actual):
            mismatches.append(
                f"{page}:{block.line}: $ {command.text}\n"
                + "--- the page shows\n"
                + "\n".join(expected)
                + "\n--- it prints\n"
                + "\n".join(actual)
            )
    assert not mismatches, "\n\n".join(mismatches)


def test_most_blocks_run() -> None:
    every = [b for page in PAGES for b in blocks(page)]
    skipped = [b for b in every if b.skip]
    assert len(every) >= 40
    assert len(every) - len(skipped) >= 25, [f"{b.page}:{b.line}" for b in skipped]
    # Every reason still names a block (a reworded page must not leave a dead entry).
    used = {
        (b.page, key)
        for b in skipped
        for (page, key) in SKIP
        if page == b.page and b.commands[0].text.startswith(key)
    }
    assert {(p, k) for p, k in SKIP} <= used


def test_an_ellipsis_stands_for_lines_or_text() -> None:
    assert matches(["a", "…", "d"], ["a", "b", "c", "d"])
    assert matches(["a", "…", "d"], ["a", "d"])
    assert not matches(["a", "…", "d"], ["a", "b", "c"])
    assert matches(["wrote /…/schemas/agent.json"], ["wrote /x/y/schemas/agent.json"])
    assert not matches(["a"], ["a", "b"])


def test_normalize_lets_ids_and_times_vary(tmp_path: Path) -> None:
    shown = "run 59e9c7870ee8 succeeded in 1.27s at 2026-12-03T09:37:42Z (key dsk_ab12_cd34)"
    printed = "run 3a5888d48722 succeeded in 0.02s at 2026-12-04T10:00:01.123Z (key dsk_x9_y8)"
    assert normalize(shown, tmp_path) == normalize(printed, tmp_path)
    assert normalize("run scan_and_fix", tmp_path) == ["run scan_and_fix"]
    assert normalize(f"{tmp_path}/manifests: valid", tmp_path) == ["manifests: valid"]
