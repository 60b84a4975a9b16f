"""bandit's findings for a file are reused while its bytes and the policy stay the same.

Real bandit processes; the test only counts, through the module's own ``run`` seam,
which files each scan gave to bandit. Reuse must not change what is reported: each scan
is compared with a scan of the same tree in a fresh cache.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from devskyy.agents.codecheck import bandit, proc
from devskyy.agents.codecheck.issues import Issue

pytestmark = pytest.mark.slow

SECRET = 'password = "hunter2-not-real"\n'
PICKLE = "import pickle\n\n\ndef load(data):\n    return pickle.loads(data)\n"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The file names each bandit process was given (relative to its working folder)."""
    seen: list[list[str]] = []
    monkeypatch.setattr(bandit, "_CACHE", {})

    async def counting(argv: Sequence[str], **kwargs: Any) -> Any:
        files = list(argv[list(argv).index("--") + 1 :])
        seen.append(sorted(Path(f).name for f in files))
        return await proc.run(argv, **kwargs)

    monkeypatch.setattr(bandit, "run", counting)
    return seen


def tree(root: Path) -> list[Path]:
    root.mkdir(parents=True)
    (root / "a.py").write_text(SECRET)
    (root / "b.py").write_text(PICKLE)
    return [root / "a.py", root / "b.py"]


def scan(root: Path, config: str | None = None) -> list[tuple[str, int, str]]:
    files = sorted(p for p in root.glob("*.py"))
    found: list[Issue] = asyncio.run(bandit.scan(root, files, config=config))
    return sorted((i.file, i.line, i.rule) for i in found)


def fresh(root: Path, config: str | None = None) -> list[tuple[str, int, str]]:
    """What bandit reports with nothing remembered."""
    saved = dict(bandit._CACHE)
    bandit._CACHE.clear()
    try:
        return scan(root, config)
    finally:
        bandit._CACHE.clear()
        bandit._CACHE.update(saved)


def test_an_unchanged_file_is_not_given_to_bandit_again(
    tmp_path: Path, calls: list[list[str]]
) -> None:
    root = tmp_path / "proj"
    tree(root)
    first = scan(root)
    assert first == [
        ("a.py", 1, "B105"),
        ("b.py", 1, "B403"),
        ("b.py", 5, "B301"),
    ]
    assert calls == [["a.py", "b.py"]]

    assert scan(root) == first
    assert calls == [["a.py", "b.py"]]  # no bandit process at all

    (root / "b.py").write_text("def load(data):\n    return data\n")
    changed = scan(root)
    assert calls[1:] == [["b.py"]]  # only the changed file
    assert changed == [("a.py", 1, "B105")]
    calls.clear()
    assert changed == fresh(root)


def test_devskyys_own_policy_reuses_findings_under_another_root(
    tmp_path: Path, calls: list[list[str]]
) -> None:
    tree(tmp_path / "one")
    first = scan(tmp_path / "one")
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    assert scan(tmp_path / "two") == first
    assert calls == [["a.py", "b.py"]]


def test_a_projects_own_policy_is_keyed_by_root_and_by_its_content(
    tmp_path: Path, calls: list[list[str]]
) -> None:
    root = tmp_path / "one"
    tree(root)
    (root / "pyproject.toml").write_text('[tool.bandit]\nskips = ["B105"]\n')
    first = scan(root, "pyproject.toml")
    assert first == [("b.py", 1, "B403"), ("b.py", 5, "B301")]
    assert scan(root, "pyproject.toml") == first
    assert len(calls) == 1

    # Its excludes may name paths: another root asks bandit again.
    shutil.copytree(root, tmp_path / "two")
    assert scan(tmp_path / "two", "pyproject.toml") == first
    assert len(calls) == 2

    # A changed policy asks bandit again, and its verdict is the new one.
    (root / "pyproject.toml").write_text('[tool.bandit]\nskips = ["B403", "B301"]\n')
    assert scan(root, "pyproject.toml") == [("a.py", 1, "B105")]
    assert calls[2:] == [["a.py", "b.py"]]


def test_a_file_that_cannot_be_read_is_still_reported_and_never_remembered(
    tmp_path: Path, calls: list[list[str]]
) -> None:
    root = tmp_path / "proj"
    a, _ = tree(root)
    gone = root / "gone.py"
    files = [a, gone]
    found = asyncio.run(bandit.scan(root, files))
    assert sorted((i.file, i.rule) for i in found) == [("a.py", "B105"), ("gone.py", "skipped")]
    again = asyncio.run(bandit.scan(root, files))
    assert sorted((i.file, i.rule) for i in again) == [("a.py", "B105"), ("gone.py", "skipped")]
    assert calls == [["a.py", "gone.py"], ["gone.py"]]
