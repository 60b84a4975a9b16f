"""Dry-run diffs are patches: ``git apply`` accepts them. Secrets are masked only inside
the literal that holds them, the same way on both sides; records stay bounded however
many fixes a file gets; the line diff is the patience diff and agrees with difflib."""

from __future__ import annotations

import difflib
import json
import random
import subprocess
from pathlib import Path

from codecheck_helpers import call, write_tree

from devskyy.agents.codecheck import linediff, redaction, security
from devskyy.agents.codecheck.records import MAX_DIFF_LINES, MAX_FIXES_PER_FILE, bounded_diff
from devskyy.agents.fixer import FixerAgent
from devskyy.agents.scanner import ScannerAgent

SECRET = "f3b9c2e41d8a6f05e9b1c4d2a8f6e3b7c1d9"
MASKED = security.HIDDEN


def git(repo: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args],
        cwd=repo,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def repo(path: Path, files: dict[str, str]) -> Path:
    write_tree(path, files)
    assert git(path, "init", "-q").returncode == 0
    return path


WITH_SHORT_PASSWORD = (
    'password = "abc"\n'
    + "".join(f"VALUE_{n} = {n}\n" for n in range(8))
    + "import abc\n\nprint(VALUE_1)\n"
)


def test_a_short_secret_never_corrupts_unrelated_lines(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    """``password = "abc"`` is flagged; ``import abc`` far below must stay as it is in the
    diff, or the patch would not apply (the old redaction replaced every ``abc``)."""
    project = repo(tmp_path / "p", {"m.py": WITH_SHORT_PASSWORD})
    report = call(scanner, scan_type="quick", target_path=str(project))
    dry = call(fixer, scan_results=report, dry_run=True)
    diff = dry["diffs"]["m.py"]
    assert "-import abc\n" in diff
    assert git(project, "apply", "--check", "-", stdin=diff).returncode == 0
    assert git(project, "apply", "-", stdin=diff).returncode == 0
    # The patch does what the real fix does.
    applied = (project / "m.py").read_text()
    (project / "m.py").write_text(WITH_SHORT_PASSWORD)
    call(fixer, scan_results=report)
    assert (project / "m.py").read_text() == applied


SETTINGS = f'API_KEY="{SECRET}"\nDEBUG=False\n# rotate {SECRET} monthly\n'


def test_a_secret_on_a_changed_line_is_masked_alike_on_both_sides(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    project = repo(tmp_path / "p", {"settings.py": SETTINGS})
    report = call(scanner, scan_type="quick", target_path=str(project))
    dry = call(fixer, scan_results=report, dry_run=True)
    assert SECRET not in json.dumps(dry)
    diff = dry["diffs"]["settings.py"]
    assert f'-API_KEY="{MASKED}"\n' in diff
    assert f'+API_KEY = "{MASKED}"\n' in diff
    assert f" # rotate {MASKED} monthly\n" in diff  # the long value, copied: masked too
    # The patch applies to a copy masked the same way, and gives the masked fixed file.
    masked = repo(tmp_path / "masked", {"settings.py": SETTINGS.replace(SECRET, MASKED)})
    assert git(masked, "apply", "-", stdin=diff).returncode == 0
    call(fixer, scan_results=report)
    fixed = (project / "settings.py").read_text()
    assert fixed == f'API_KEY = "{SECRET}"\nDEBUG = False\n# rotate {SECRET} monthly\n'
    assert (masked / "settings.py").read_text() == fixed.replace(SECRET, MASKED)


def test_masking_is_line_local() -> None:
    flagged = redaction.Secrets(frozenset({"abc", SECRET}), frozenset({'password = "abc"'}))
    text = f'password = "abc"\nimport abc\nlabel = "abc and more"\ntoken = "{SECRET}"  # {SECRET}\n'
    assert redaction.redact(text, flagged) == (
        f'password = "{MASKED}"\n'
        "import abc\n"
        'label = "abc and more"\n'
        f'token = "{MASKED}"  # {MASKED}\n'
    )


def test_records_stay_bounded_and_the_counts_stay_whole(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    lines = 3_000
    source = "".join(f'value_{n} = f"text {n}"\n' for n in range(lines))  # F541, safe
    project = repo(tmp_path / "p", {"m.py": source})
    report = call(scanner, scan_type="quick", target_path=str(project))
    assert report["counts"]["fixable"] == lines
    dry = call(fixer, scan_results=report, dry_run=True)
    assert dry["fix_counts"] == {
        "applied": lines,
        "shown": MAX_FIXES_PER_FILE,
        "omitted_by_file": {"m.py": lines - MAX_FIXES_PER_FILE},
        "behaviour_changing": 0,
    }
    assert len(dry["fixes_applied"]) == MAX_FIXES_PER_FILE
    shown = dry["diffs"]["m.py"].splitlines()
    assert len(shown) <= MAX_DIFF_LINES
    assert dry["diffs_truncated"] == {"m.py": {"shown_lines": len(shown), "lines": 2 * lines + 3}}
    # What is shown is whole hunks: it still applies.
    assert git(project, "apply", "--check", "-", stdin=dry["diffs"]["m.py"]).returncode == 0
    assert len(json.dumps(dry)) < 400_000
    assert dry["remaining_counts"]["total"] == 0


def test_bounded_diff_cuts_at_hunks() -> None:
    before = [f"{n}\n" for n in range(100)]
    after = [f"{n}!\n" if n % 10 == 0 else f"{n}\n" for n in range(100)]
    diff = "".join(linediff.unified(before, after, "a/x", "b/x"))
    cut, total = bounded_diff(diff, limit=20)
    assert total == len(diff.splitlines())
    assert cut.startswith("--- a/x\n+++ b/x\n@@ -1,4 +1,4 @@\n")
    assert len(cut.splitlines()) <= 20
    assert cut.count("@@ -") == 2  # two whole hunks of 9 lines (with the headers: 20)
    assert bounded_diff(diff, limit=1) == ("", total)


def test_linediff_matches_difflib_on_random_edits() -> None:
    rng = random.Random(13)
    for _ in range(300):
        vocabulary = [f"l{k}\n" for k in range(rng.randint(1, 8))]
        a = [rng.choice(vocabulary) for _ in range(rng.randint(0, 30))]
        b = list(a)
        for _ in range(rng.randint(0, 6)):
            roll = rng.random()
            if roll < 0.3 and b:
                del b[rng.randrange(len(b))]
            elif roll < 0.6:
                b.insert(rng.randint(0, len(b)), rng.choice([*vocabulary, "new\n"]))
            elif b:
                b[rng.randrange(len(b))] = "changed\n"
        rebuilt: list[str] = []
        position = (0, 0)
        for tag, i1, i2, j1, j2 in linediff.opcodes(a, b):
            assert (i1, j1) == position
            rebuilt += a[i1:i2] if tag == "equal" else b[j1:j2]
            if tag == "equal":
                assert a[i1:i2] == b[j1:j2]
            position = (i2, j2)
        assert position == (len(a), len(b))
        assert rebuilt == b
        ours = "".join(linediff.unified(a, b, "a", "b"))
        assert bool(ours) == bool("".join(difflib.unified_diff(a, b, "a", "b")))


def test_a_last_line_without_newline_is_marked_as_git_does(tmp_path: Path) -> None:
    project = repo(tmp_path / "p", {"m.txt": "a\nb"})
    diff = "".join(linediff.unified(["a\n", "b"], ["a\n", "c"], "a/m.txt", "b/m.txt"))
    assert diff.endswith("-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n")
    assert git(project, "apply", "-", stdin=diff).returncode == 0
    assert (project / "m.txt").read_text() == "a\nc"
