"""The fixer agent on a copy of the sample project: dry runs change nothing, a fix
leaves nothing fixable and the project's own tests passing, only named files and
issues change, nothing outside target_path is touched, backups restore every byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from codecheck_helpers import (
    call,
    copy_sample,
    digest,
    run_sample_tests,
    tree_bytes,
)

from devskyy.agents.codecheck import backup, codemods
from devskyy.agents.codecheck.fixing import apply_edits, line_map
from devskyy.agents.fixer import FixerAgent
from devskyy.agents.scanner import ScannerAgent
from devskyy.errors import PermanentError

FIXES = [
    ("inventory/report.py", "B602", 7),
    ("inventory/report.py", "I001", 2),
    ("inventory/report.py", "format", 2),
    ("inventory/store.py", "F401", 3),
]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return copy_sample(tmp_path)


def scan(scanner: ScannerAgent, root: Path, scan_type: str = "full") -> dict[str, Any]:
    return call(scanner, scan_type=scan_type, target_path=str(root))


def test_dry_run_changes_nothing_and_returns_diffs(
    scanner: ScannerAgent, fixer: FixerAgent, sample: Path, tmp_path: Path
) -> None:
    before = tree_bytes(sample)
    result = call(fixer, scan_results=scan(scanner, sample), dry_run=True)
    assert tree_bytes(sample) == before
    assert not (tmp_path / "state").exists()  # no backup either
    assert result["files_fixed"] == 0
    assert result["backup_path"] is None
    assert [(f["file"], f["rule"], f["line"]) for f in result["fixes_applied"]] == FIXES
    # yaml.load(…, Loader=yaml.FullLoader) changes behaviour when made safe: not in auto.
    assert sorted(result["diffs"]) == ["inventory/report.py", "inventory/store.py"]
    assert result["diffs"]["inventory/store.py"] == (
        "--- a/inventory/store.py\n"
        "+++ b/inventory/store.py\n"
        "@@ -1,6 +1,5 @@\n"
        ' """Items and the inventory that holds them."""\n'
        " \n"
        "-import os\n"
        " from dataclasses import dataclass, field\n"
        " from typing import Dict, List, Optional\n"
        " \n"
    )
    assert result["fix_counts"] == {
        "applied": 4,
        "shown": 4,
        "omitted_by_file": {},
        "behaviour_changing": 0,
    }


def test_security_fix_type_labels_behaviour_changes(
    scanner: ScannerAgent, fixer: FixerAgent, sample: Path
) -> None:
    result = call(fixer, scan_results=scan(scanner, sample), fix_type="security", dry_run=True)
    assert [(f["file"], f["rule"], f["behaviour_change"]) for f in result["fixes_applied"]] == [
        (
            "inventory/config.py",
            "B506",
            "behaviour change: yaml.safe_load refuses the !!python/* tags this loader accepted",
        ),
        ("inventory/report.py", "B602", None),
    ]
    assert result["fix_counts"]["behaviour_changing"] == 1
    assert result["diffs"]["inventory/config.py"] == (
        "--- a/inventory/config.py\n"
        "+++ b/inventory/config.py\n"
        "@@ -10,7 +10,7 @@\n"
        " \n"
        " def load_settings(path):\n"
        "     with open(path) as fh:\n"
        "-        data = yaml.load(fh, Loader=yaml.FullLoader)\n"
        "+        data = yaml.safe_load(fh)\n"
        "     settings = dict(DEFAULTS)\n"
        "     settings.update(data or {})\n"
        "     return settings\n"
    )


@pytest.mark.slow
def test_fix_leaves_nothing_fixable_and_tests_passing(
    scanner: ScannerAgent, fixer: FixerAgent, sample: Path, tmp_path: Path
) -> None:
    original = tree_bytes(sample)
    first = scan(scanner, sample)
    result = call(fixer, scan_results=first)
    assert result["files_fixed"] == 2
    assert result["changed_files"] == ["inventory/report.py", "inventory/store.py"]
    applied = {(f["file"], f["rule"]): f for f in result["fixes_applied"]}
    assert [(f["file"], f["rule"], f["line"]) for f in result["fixes_applied"]] == FIXES
    assert applied["inventory/report.py", "B602"]["before"] == (
        '    result = subprocess.run("git rev-parse --short HEAD", shell=True,'
        " capture_output=True, text=True)"
    )
    assert applied["inventory/report.py", "B602"]["after"] == (
        '    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"],'
        " capture_output=True, text=True)"
    )
    # The real span of ruff's edit: the import block before, and as sorted.
    assert applied["inventory/report.py", "I001"]["before"] == (
        "import subprocess\nfrom inventory.store import Inventory"
    )
    assert applied["inventory/report.py", "I001"]["after"] == (
        "import subprocess\n\nfrom inventory.store import Inventory"
    )
    assert applied["inventory/store.py", "F401"] == {
        "file": "inventory/store.py",
        "rule": "F401",
        "tool": "ruff",
        "line": 3,
        "before": "import os",
        "after": None,
        "behaviour_change": None,
    }
    # Nothing fixable is left, and unfixable findings are reported, secrets included.
    assert result["remaining_counts"]["fixable"] == 0
    remaining = {(i["file"], i["rule"]) for i in result["remaining_issues"]}
    assert ("inventory/config.py", "B105") in remaining
    b506 = next(i for i in result["remaining_issues"] if i["rule"] == "B506")
    assert b506["action"] == (
        "fix_type: security rewrites it to yaml.safe_load (behaviour change: yaml.safe_load"
        " refuses the !!python/* tags this loader accepted)"
    )
    after = scan(scanner, sample)
    assert after["counts"]["fixable"] == 0
    # The fixer's numbers are the rescan's: 22 - 4 fixed + B603 (argv without a shell).
    assert after["counts"] == result["remaining_counts"]
    assert after["counts"]["total"] == 19
    assert after["issues"] == result["remaining_issues"]
    # The secret is still there for a person to move out: never turned into a default.
    assert (
        'API_TOKEN = "f3b9c2e41d8a6f05e9b1c4d2a8f6e3b7c1d9"'
        in (sample / "inventory" / "config.py").read_text()
    )
    # Only the fixed files changed.
    now = tree_bytes(sample)
    assert {k for k in now if now[k] != original.get(k)} == set(result["changed_files"])
    done = run_sample_tests(sample)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 passed" in done.stdout
    # The backup restores every byte.
    backup_path = Path(result["backup_path"])
    assert backup_path.parent == (tmp_path / "state" / ".devskyy" / "backups").absolute()
    assert not backup_path.is_relative_to(sample)
    restored = backup.restore(backup_path)
    assert restored.files == result["changed_files"]
    assert digest(tree_bytes(sample)) == digest(original)


def test_second_fix_run_changes_nothing(
    scanner: ScannerAgent, fixer: FixerAgent, sample: Path
) -> None:
    call(fixer, scan_results=scan(scanner, sample))
    settled = tree_bytes(sample)
    again = call(fixer, scan_results=scan(scanner, sample))
    assert (again["files_fixed"], again["fixes_applied"], again["backup_path"]) == (0, [], None)
    assert tree_bytes(sample) == settled


def test_only_named_files_change(scanner: ScannerAgent, fixer: FixerAgent, sample: Path) -> None:
    original = tree_bytes(sample)
    report = scan(scanner, sample)
    result = call(fixer, scan_results=report, target_files=["inventory/store.py"])
    assert result["changed_files"] == ["inventory/store.py"]
    now = tree_bytes(sample)
    assert {k for k in now if now[k] != original[k]} == {"inventory/store.py"}
    # Issues of other files are dropped from a scan_results the caller trimmed, too.
    report["issues"] = [i for i in report["issues"] if i["file"] == "inventory/config.py"]
    result = call(fixer, scan_results=report, fix_type="security")
    assert result["changed_files"] == ["inventory/config.py"]
    now2 = tree_bytes(sample)
    assert {k for k in now2 if now2[k] != now[k]} == {"inventory/config.py"}


def test_only_named_issues_change(tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "m.py").write_text("import os\nimport sys\n\nprint(1)\n")
    report = scan(scanner, root, "quick")
    assert [(i["rule"], i["line"]) for i in report["issues"]] == [("F401", 1), ("F401", 2)]
    report["issues"] = report["issues"][1:]  # name only `import sys`
    result = call(fixer, scan_results=report)
    assert (root / "m.py").read_text() == "import os\n\nprint(1)\n"
    assert [(f["rule"], f["line"], f["before"]) for f in result["fixes_applied"]] == [
        ("F401", 2, "import sys")
    ]


def test_fix_type_selects_issues(scanner: ScannerAgent, fixer: FixerAgent, sample: Path) -> None:
    report = scan(scanner, sample)
    security = call(fixer, scan_results=report, fix_type="security", dry_run=True)
    assert [(f["file"], f["rule"]) for f in security["fixes_applied"]] == [
        ("inventory/config.py", "B506"),
        ("inventory/report.py", "B602"),
    ]
    auto = call(fixer, scan_results=report, dry_run=True)
    assert ("inventory/config.py", "B506") not in {
        (f["file"], f["rule"]) for f in auto["fixes_applied"]
    }
    fmt = call(fixer, scan_results=report, fix_type="format", dry_run=True)
    assert [(f["file"], f["rule"]) for f in fmt["fixes_applied"]] == [
        ("inventory/report.py", "format")
    ]
    perf = call(fixer, scan_results=report, fix_type="performance", dry_run=True)
    assert perf["fixes_applied"] == []


def test_target_files_without_scan_results(fixer: FixerAgent, sample: Path) -> None:
    original = tree_bytes(sample)
    result = call(
        fixer, target_path=str(sample), target_files=["inventory/report.py"], fix_type="format"
    )
    assert [(f["file"], f["rule"]) for f in result["fixes_applied"]] == [
        ("inventory/report.py", "format")
    ]
    now = tree_bytes(sample)
    assert {k for k in now if now[k] != original[k]} == {"inventory/report.py"}


def test_never_outside_target_path(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent, sample: Path
) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("import os\n")
    (sample / "inventory" / "linked.py").symlink_to(outside)
    before = outside.read_bytes()
    report = scan(scanner, sample, "quick")
    # The walker does not follow the link out; a forged report naming it is refused.
    assert "inventory/linked.py" not in {i["file"] for i in report["issues"]}
    forged = dict(report)
    issue = {
        "file": "inventory/linked.py",
        "line": 1,
        "column": 8,
        "rule": "F401",
        "tool": "ruff",
        "severity": "medium",
        "message": "`os` imported but unused",
        "fixable": True,
    }
    forged["issues"] = [issue, {**issue, "file": "../outside.py"}]
    result = call(fixer, scan_results=forged)
    assert outside.read_bytes() == before
    assert result["files_fixed"] == 0
    assert [s["file"] for s in result["skipped"]] == ["inventory/linked.py", "../outside.py"]
    assert all(s["reason"].startswith("refused: ") for s in result["skipped"])
    with pytest.raises(PermanentError, match="outside"):
        call(fixer, target_path=str(sample), target_files=["../outside.py"])
    with pytest.raises(PermanentError, match="outside the allowed roots"):
        call(fixer, target_path="/", target_files=["etc/hosts"])


def test_changed_since_scan_is_skipped(
    scanner: ScannerAgent, fixer: FixerAgent, sample: Path
) -> None:
    report = scan(scanner, sample)
    store = sample / "inventory" / "store.py"
    store.write_text(store.read_text() + "\n# edited after the scan\n")
    edited = store.read_bytes()
    result = call(fixer, scan_results=report)
    assert {"file": "inventory/store.py", "reason": "skipped: the file changed since the scan"} in (
        result["skipped"]
    )
    assert store.read_bytes() == edited
    assert "inventory/store.py" not in result["changed_files"]


def test_nothing_named_is_refused(fixer: FixerAgent, sample: Path) -> None:
    with pytest.raises(PermanentError) as info:
        call(fixer, target_path=str(sample))
    assert str(info.value) == "nothing to fix: pass scan_results or target_files"
    with pytest.raises(PermanentError, match="fix_type: Input should be 'auto'"):
        call(fixer, target_path=str(sample), fix_type="everything")


def test_no_backup_when_not_asked(
    scanner: ScannerAgent, fixer: FixerAgent, sample: Path, tmp_path: Path
) -> None:
    result = call(fixer, scan_results=scan(scanner, sample), create_backup=False)
    assert result["files_fixed"] == 2
    assert result["backup_path"] is None
    assert not (tmp_path / "state").exists()


def test_backup_inside_the_tree_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "src").mkdir(parents=True)
    with pytest.raises(backup.BackupError, match="inside the scanned tree"):
        backup.create(root / "src" / "bk", root, {"a.py": b"x"}, 0.0)
    made = backup.create(root / ".devskyy" / "backups" / "b1", root, {"a.py": b"x"}, 0.0)
    manifest = json.loads((made / "manifest.json").read_text())
    assert manifest["files"][0]["path"] == "a.py"
    assert manifest["files"][0]["size"] == 1


def test_backup_restore_checks_content(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "a.py").write_bytes(b"new\r\n")
    made = backup.create(tmp_path / "bk", root, {"a.py": b"old\r\n\x00"}, 0.0)
    assert backup.restore(made).files == ["a.py"]
    assert (root / "a.py").read_bytes() == b"old\r\n\x00"
    (made / "files" / "a.py").write_bytes(b"tampered")
    with pytest.raises(backup.BackupError, match="does not match the backup's sha256"):
        backup.restore(made)
    with pytest.raises(backup.BackupError, match="is not a devskyy fixer backup"):
        backup.restore(tmp_path)


BOTH = (codemods.Verdict.EQUIVALENT, codemods.Verdict.BEHAVIOUR)


@pytest.mark.parametrize(
    ("source", "expected", "verdict"),
    [
        ("yaml.load(s, Loader=yaml.FullLoader)\n", "yaml.safe_load(s)\n", "behaviour"),
        ("yaml.load(s, yaml.Loader)  # why\n", "yaml.safe_load(s)  # why\n", "behaviour"),
        ("yaml.load(stream=s)\n", "yaml.safe_load(s)\n", "behaviour"),
        ("yaml.load(s, Loader=yaml.UnsafeLoader)\n", "yaml.safe_load(s)\n", "behaviour"),
        ("yaml.load(*a)\n", None, "review"),
        ("yaml.load(s, Loader=L, extra=1)\n", None, "review"),
        ("yaml.load(s, Loader=IncludeLoader)\n", None, "review"),
        ("yaml.load(s, Loader=loaders.EnvLoader)\n", None, "review"),
        (
            'subprocess.run("git status --short", shell=True, check=True)\n',
            'subprocess.run(["git", "status", "--short"], check=True)\n',
            "equivalent",
        ),
        ('subprocess.Popen("make", shell=True)\n', 'subprocess.Popen(["make"])\n', "equivalent"),
        ('subprocess.run("ls -la", shell=True)\n', 'subprocess.run(["ls", "-la"])\n', "equivalent"),
        ('subprocess.run("ls | wc -l", shell=True)\n', None, "review"),
        ('subprocess.run("cd /tmp", shell=True)\n', None, "review"),
        ('subprocess.run(f"git {x}", shell=True)\n', None, "review"),
        ("subprocess.run(cmd, shell=True)\n", None, "review"),
        ('subprocess.run("echo $HOME", shell=True)\n', None, "review"),
        ('subprocess.run("ls", shell=flag)\n', None, "review"),
        ('subprocess.run("FOO=bar env", shell=True)\n', None, "review"),
        ('subprocess.run("time ls", shell=True)\n', None, "review"),
        ('subprocess.run(". ./env.sh", shell=True)\n', None, "review"),
        (
            'subprocess.Popen("ls -la", shell=True, executable="/bin/bash")\n',
            None,
            "review",
        ),
    ],
)
def test_codemods(source: str, expected: str | None, verdict: str) -> None:
    rule = "B506" if source.startswith("yaml") else "B602"
    new, applied = codemods.rewrite(source, [(rule, 1)], BOTH)
    if expected is None:
        assert (new, applied) == (source, [])
    else:
        assert (new, applied) == (expected, [(rule, 1)])
    assert codemods.assess(source, [(rule, 1)])[(rule, 1)].verdict == verdict
    # fix_type auto applies only what is proven equivalent.
    auto = codemods.rewrite(source, [(rule, 1)])
    assert auto == ((expected, [(rule, 1)]) if verdict == "equivalent" else (source, []))


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "yaml.load(s, Loader=IncludeLoader)\n",
            "Loader=IncludeLoader is not one of PyYAML's own unsafe loaders; a custom loader "
            "(such as a SafeLoader subclass with its own constructors) may be safe and would "
            "lose its constructors under yaml.safe_load: review it",
        ),
        (
            'run("FOO=bar env", shell=True)\n',
            "shell=True kept: the command starts with a variable assignment (FOO=bar)",
        ),
        (
            'run("time ls", shell=True)\n',
            "shell=True kept: its first word `time` is a shell keyword",
        ),
        (
            'subprocess.Popen("ls -la", shell=True, executable="/bin/bash")\n',
            "shell=True kept: executable= names the shell (or program) that runs the command",
        ),
        (
            'subprocess.run("ls *.py", shell=True)\n',
            "shell=True kept: the command uses shell syntax (quoting, $, globs, pipes,"
            " redirection…)",
        ),
    ],
)
def test_codemod_reasons(source: str, reason: str) -> None:
    rule = "B506" if source.startswith("yaml") else "B602"
    prelude = "from subprocess import run\n"
    assessed = codemods.assess(prelude + source, [(rule, 2)])
    assert assessed[(rule, 2)] == codemods.Assessment(codemods.Verdict.REVIEW, reason)


def test_bare_name_imported_from_subprocess() -> None:
    source = 'from subprocess import run as sh\nsh("ls -la", shell=True)\n'
    new, applied = codemods.rewrite(source, [("B602", 2)])
    assert new == 'from subprocess import run as sh\nsh(["ls", "-la"])\n'
    assert applied == [("B602", 2)]
    # A local function that happens to be called run is not subprocess.run.
    local = 'def run(c, shell=False): ...\nrun("ls -la", shell=True)\n'
    assert codemods.rewrite(local, [("B602", 2)]) == (local, [])


def test_codemod_only_on_the_named_line() -> None:
    source = "a = yaml.load(x, Loader=yaml.Loader)\nb = yaml.load(y, Loader=yaml.Loader)\n"
    new, applied = codemods.rewrite(source, [("B506", 2)], BOTH)
    assert new == "a = yaml.load(x, Loader=yaml.Loader)\nb = yaml.safe_load(y)\n"
    assert applied == [("B506", 2)]


def test_apply_edits_skips_overlaps_and_line_map() -> None:
    def diag(row: int, col: int, end_row: int, end_col: int, content: str) -> dict[str, Any]:
        loc = {"row": row, "column": col}
        end = {"row": end_row, "column": end_col}
        return {
            "location": loc,
            "fix": {"edits": [{"location": loc, "end_location": end, "content": content}]},
        }

    text = "abc\ndef\n"
    assert apply_edits(text, [diag(1, 1, 2, 1, ""), diag(1, 2, 1, 3, "X")]) == "def\n"
    assert apply_edits(text, [diag(2, 1, 2, 2, "D"), diag(1, 3, 1, 4, "C")]) == "abC\nDef\n"
    assert line_map(["a", "b", "c"], ["a", "c"]) == {1: 1, 2: None, 3: 2}


def test_secrets_in_fixed_lines_are_hidden(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    secret = "f3b9c2e41d8a6f05e9b1c4d2a8f6e3b7c1d9"
    (root / "settings.py").write_text(f'API_KEY="{secret}"\nDEBUG=False\n')
    report = scan(scanner, root, "quick")
    assert [(i["rule"], i["line"]) for i in report["issues"]] == [("format", 1)]
    dry = call(fixer, scan_results=report, dry_run=True)
    assert secret not in json.dumps(dry)
    assert dry["fixes_applied"][0]["before"] == 'API_KEY="(secret hidden)"\nDEBUG=False'
    assert '+API_KEY = "(secret hidden)"\n' in dry["diffs"]["settings.py"]
    done = call(fixer, scan_results=report)
    assert secret not in json.dumps(done)
    # The file itself is formatted, secret and all: removing it is a person's job.
    assert (root / "settings.py").read_text() == f'API_KEY = "{secret}"\nDEBUG = False\n'


def test_malformed_scan_results_are_refused(fixer: FixerAgent, sample: Path) -> None:
    with pytest.raises(PermanentError) as info:
        call(fixer, scan_results={"target_path": str(sample), "issues": [{"file": "a.py"}]})
    assert str(info.value) == "scan_results is not a scanner's output: KeyError('line')"
    forged = {"target_path": str(sample), "issues": [], "settings": {"ruff": {"select": ["E,--x"]}}}
    with pytest.raises(PermanentError, match="bad ruff rule selection"):
        call(fixer, scan_results=forged)


def test_two_findings_of_one_rule_on_one_line(
    tmp_path: Path, scanner: ScannerAgent, fixer: FixerAgent
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "m.py").write_text("import os, sys\n\nprint(1)\n")
    report = scan(scanner, root, "quick")
    named = [(i["rule"], i["line"], i["column"]) for i in report["issues"]]
    assert named == [("E401", 1, 1), ("I001", 1, 1), ("F401", 1, 8), ("F401", 1, 12)]
    result = call(fixer, scan_results=report)
    assert (root / "m.py").read_text() == "print(1)\n"
    assert sorted((f["rule"], f["line"]) for f in result["fixes_applied"]) == [
        ("E401", 1),
        ("F401", 1),
        ("F401", 1),
        ("I001", 1),
    ]
    assert result["remaining_issues"] == []
