"""The scanner agent on a copy of the sample project: exact findings per scan type,
the walker's exclusions, the live check against a local server, parameter errors."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from codecheck_helpers import call, copy_sample, findings, make_agent

from devskyy.agents.codecheck.bandit import partition
from devskyy.agents.codecheck.files import PathEscape, resolve_inside, walk
from devskyy.agents.codecheck.perf import PerfSettings, check_source, complexity
from devskyy.agents.scanner import ScannerAgent, compare
from devskyy.errors import PermanentError

QUICK = [
    ("inventory/report.py", 2, "I001", "ruff", "low", True),
    ("inventory/report.py", 2, "format", "ruff-format", "low", True),
    ("inventory/store.py", 3, "F401", "ruff", "medium", True),
    ("inventory/store.py", 5, "UP035", "ruff", "low", False),
    ("inventory/store.py", 5, "UP035", "ruff", "low", False),
    ("inventory/store.py", 14, "UP006", "ruff", "low", False),
    ("inventory/store.py", 19, "UP006", "ruff", "low", False),
    ("inventory/store.py", 22, "SIM118", "ruff", "low", False),
    ("inventory/store.py", 29, "E711", "ruff", "low", False),
    ("inventory/store.py", 44, "UP006", "ruff", "low", False),
    ("inventory/store.py", 44, "UP006", "ruff", "low", False),
    ("inventory/store.py", 45, "C416", "ruff", "low", False),
    ("inventory/store.py", 49, "PERF401", "ruff", "low", False),
]
SECURITY = [
    ("inventory/config.py", 6, "B105", "bandit", "low", False),
    ("inventory/config.py", 13, "B506", "bandit", "medium", False),
    ("inventory/config.py", 22, "B501", "bandit", "high", False),
    ("inventory/report.py", 2, "B404", "bandit", "low", False),
    ("inventory/report.py", 7, "B602", "bandit", "low", True),
    ("inventory/report.py", 7, "B607", "bandit", "low", False),
]
PERFORMANCE = [
    ("inventory/report.py", 14, "DS103", "devskyy-ast", "low", False),
    ("inventory/report.py", 18, "DS101", "devskyy-ast", "medium", False),
    ("inventory/store.py", 48, "DS102", "devskyy-ast", "medium", False),
    ("inventory/store.py", 49, "PERF401", "ruff", "low", False),
]
SECRET_VALUE = "f3b9c2e41d8a6f05e9b1c4d2a8f6e3b7c1d9"


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return copy_sample(tmp_path)


def test_quick_scan_exact_findings(scanner: ScannerAgent, sample: Path) -> None:
    report = call(scanner, scan_type="quick", target_path=str(sample))
    assert findings(report) == QUICK
    assert report["files_scanned"] == 5
    assert report["counts"] == {
        "total": 13,
        "fixable": 2 + 1,
        "by_severity": {"critical": 0, "high": 0, "medium": 1, "low": 12},
        "by_tool": {"ruff": 12, "ruff-format": 1},
    }
    assert report["settings"]["checks"] == ["ruff", "ruff-format"]
    assert set(report["tools"]) == {"ruff"}


def test_security_scan_exact_findings(scanner: ScannerAgent, sample: Path) -> None:
    report = call(scanner, scan_type="security", target_path=str(sample))
    assert findings(report) == SECURITY
    b105 = report["issues"][0]
    assert b105["message"] == (
        "Possible hardcoded password: (value hidden) (hardcoded_password_string)"
    )
    assert b105["confidence"] == "medium"
    assert b105["action"].startswith("manual: move the secret")
    assert SECRET_VALUE not in json.dumps(report)
    assert report["counts"]["by_severity"] == {"critical": 0, "high": 1, "medium": 1, "low": 4}


def test_performance_scan_exact_findings(scanner: ScannerAgent, sample: Path) -> None:
    report = call(scanner, scan_type="performance", target_path=str(sample))
    assert findings(report) == PERFORMANCE
    messages = [i["message"] for i in report["issues"]]
    assert messages[1] == "`classify` has cyclomatic complexity 17 (more than 10); split it up"
    assert "`present`" in messages[2]


def test_full_scan_is_the_union(scanner: ScannerAgent, sample: Path) -> None:
    report = call(scanner, scan_type="full", target_path=str(sample))
    expected = sorted(
        set(QUICK) | set(SECURITY) | set(PERFORMANCE), key=lambda f: (f[0], f[1], f[2])
    )
    got = findings(report)
    assert sorted(set(got), key=lambda f: (f[0], f[1], f[2])) == expected
    assert len(got) == 22  # UP035/UP006 pairs are two findings each (two columns)
    assert report["counts"]["fixable"] == 4  # B506 changes behaviour when fixed: not safe
    assert report["counts"]["by_tool"] == {
        "bandit": 6,
        "devskyy-ast": 3,
        "ruff": 12,
        "ruff-format": 1,
    }
    assert set(report["file_hashes"]) == {
        "inventory/config.py",
        "inventory/report.py",
        "inventory/store.py",
    }
    assert report["duration_seconds"] == 0.0  # the fake clock did not move
    assert report["live_check"] is None


def test_scan_skips_ignored_virtualenvs_caches_and_build(
    scanner: ScannerAgent, sample: Path
) -> None:
    bad = "import os\nx = eval(input())\n"
    for rel in (
        "generated/bad.py",  # the sample's .gitignore
        "inventory/debug.log.py",
        ".venv/lib/bad.py",
        "env3/bin/bad.py",
        "inventory/__pycache__/bad.py",
        "build/lib/bad.py",
        "dist/bad.py",
        "node_modules/x/bad.py",
        "pkg.egg-info/bad.py",
        ".devskyy/backups/x/files/bad.py",
        "docs/scratch/bad.py",
    ):
        (sample / rel).parent.mkdir(parents=True, exist_ok=True)
        (sample / rel).write_text(bad)
    (sample / "env3" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (sample / "inventory" / ".gitignore").write_text("*.log.py\n")
    (sample / "docs" / ".gitignore").write_text("scratch/\n")
    report = call(scanner, scan_type="full", target_path=str(sample))
    assert report["files_scanned"] == 5
    assert {i["file"] for i in report["issues"]} == {
        "inventory/config.py",
        "inventory/report.py",
        "inventory/store.py",
    }


def test_walker_negation_and_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "a").mkdir(parents=True)
    (root / ".gitignore").write_text("*.py\n!keep.py\n")
    (root / "a" / "keep.py").write_text("")
    (root / "a" / "drop.py").write_text("")
    outside = tmp_path / "outside.py"
    outside.write_text("")
    (root / "link.pyi").symlink_to(outside)
    (root / "ok.pyi").write_text("")
    assert [p.relative_to(root).as_posix() for p in walk(root, (".py", ".pyi"))] == [
        "ok.pyi",
        "a/keep.py",
    ]
    with pytest.raises(PathEscape, match="outside"):
        resolve_inside(root, "link.pyi")
    with pytest.raises(PathEscape):
        resolve_inside(root, "../outside.py")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path.split("?")[0] == "/health" else 404
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_live_check_not_configured(scanner: ScannerAgent, sample: Path) -> None:
    report = call(scanner, scan_type="quick", target_path=str(sample), include_live_check=True)
    assert report["live_check"] == {"configured": False, "status": "not configured"}


def test_live_check_probes_configured_url(tmp_path: Path, sample: Path, server: str) -> None:
    agent = make_agent(ScannerAgent, tmp_path, "scanner", liveCheckUrl=f"{server}/health?k=v")
    report = call(agent, scan_type="quick", target_path=str(sample), include_live_check=True)
    assert report["live_check"] == {
        "configured": True,
        "url": f"{server}/health",  # the query string is not reported
        "ok": True,
        "status": 200,
        "latency_ms": 0.0,  # fake clock
        "error": None,
    }
    missing = make_agent(ScannerAgent, tmp_path, "scanner", live_check_url=f"{server}/nope")
    check = call(missing, scan_type="quick", target_path=str(sample), include_live_check=True)
    assert (check["live_check"]["status"], check["live_check"]["ok"]) == (404, False)


def test_live_check_connection_refused(tmp_path: Path, sample: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    agent = make_agent(ScannerAgent, tmp_path, "scanner", liveCheckUrl=f"http://127.0.0.1:{port}/")
    check = call(agent, scan_type="quick", target_path=str(sample), include_live_check=True)
    assert check["live_check"]["ok"] is False
    assert check["live_check"]["status"] is None
    assert "refused" in check["live_check"]["error"].lower()


def test_bad_parameters_are_permanent_errors(scanner: ScannerAgent, sample: Path) -> None:
    with pytest.raises(PermanentError) as info:
        call(scanner, scan_type="deep", target_path=str(sample))
    assert str(info.value) == (
        "invalid scan parameters: scan_type: Input should be 'full', 'security', "
        "'performance' or 'quick'"
    )
    with pytest.raises(PermanentError, match=r"^invalid scan parameters: depth: Extra inputs"):
        call(scanner, depth=3, target_path=str(sample))


def test_target_path_must_be_inside_allowed_roots(tmp_path: Path, sample: Path) -> None:
    agent = make_agent(ScannerAgent, tmp_path, "scanner", allowedRoots=[str(sample / "tests")])
    with pytest.raises(PermanentError) as info:
        call(agent, scan_type="quick", target_path=str(sample))
    # The refusal names the manifest field to change, in every code agent's manifest.
    assert str(info.value) == (
        f"target_path {sample} is outside the allowed roots of agent scanner:"
        f" {sample / 'tests'}; to allow it, add {sample} (or a folder above it) to"
        " spec.config.allowedRoots in the manifests of the agents scanner, fixer, security,"
        " verifier (manifests/agents/<name>.yaml), then run devskyy apply"
    )
    with pytest.raises(PermanentError, match="is not a folder"):
        call(agent, target_path=str(sample / "missing"))


def test_compare_reports_change() -> None:
    before = {"total": 5, "fixable": 2, "by_severity": {"low": 4, "high": 1}}
    after = {"total": 3, "fixable": 0, "by_severity": {"low": 2, "high": 1}}
    assert compare(before, after)["change"] == {
        "total": -2,
        "fixable": -2,
        "by_severity": {"high": 0, "low": -2},
    }


PERF_SETTINGS = PerfSettings(max_complexity=3)


def _rules(source: str) -> list[tuple[int, str]]:
    return sorted((i.line, i.rule) for i in check_source(source, "m.py", PERF_SETTINGS))


def test_perf_membership_only_on_certain_lists() -> None:
    source = (
        "def f(a, b: list[int], c):\n"  # 1
        "    seen = []\n"
        "    maybe = []\n"
        "    maybe = set()\n"
        "    for x in a:\n"  # 5
        "        if x in seen or x in maybe or x in b or x in c:\n"
        "            seen.append(x)\n"
        "    return [y for y in a if y not in seen]\n"
    )
    found = check_source(source, "m.py", PerfSettings())
    assert [(i.line, i.rule, i.message.split("`")[1]) for i in found] == [
        (6, "DS102", "seen"),
        (6, "DS102", "b"),
        (8, "DS102", "seen"),
    ]


def test_perf_string_concat_and_complexity() -> None:
    source = (
        "def render(items):\n"
        "    out = ''\n"
        "    n = 0\n"
        "    for item in items:\n"
        "        out += str(item)\n"
        "        n += 1\n"
        "    return out\n"
        "def branchy(a, b):\n"
        "    if a and b:\n"
        "        return 1\n"
        "    while a:\n"
        "        a -= 1\n"
        "    return 2 if b else 3\n"
    )
    assert _rules(source) == [(5, "DS103"), (8, "DS101")]
    tree = __import__("ast").parse(source)
    assert complexity(tree.body[1]) == 5
    assert _rules("x = (\n") == []  # a syntax error is ruff's to report


def test_perf_nested_function_is_its_own_scope() -> None:
    source = (
        "def outer(items):\n"
        "    names = []\n"
        "    def inner(names):\n"
        "        for x in items:\n"
        "            if x in names:\n"
        "                pass\n"
        "    return inner\n"
    )
    assert _rules(source) == []


def test_bandit_partition_balances_by_size(tmp_path: Path) -> None:
    sizes = {"a.py": 90, "b.py": 50, "c.py": 40, "d.py": 10}
    for name, size in sizes.items():
        (tmp_path / name).write_text("x" * size)
    files = [tmp_path / n for n in sizes]
    groups = partition(files, 2)
    assert [[p.name for p in g] for g in groups] == [["a.py", "d.py"], ["b.py", "c.py"]]
    assert partition(files, 1) == [sorted(files)]
    assert partition(files[:1], 4) == [[files[0]]]


def test_scanned_code_is_never_imported_by_the_analyzers(
    scanner: ScannerAgent, sample: Path, tmp_path: Path
) -> None:
    # bandit runs as `python -I -m bandit`: modules of the scanned tree named like the
    # stdlib or bandit's own dependencies must not be picked up from its sys.path.
    marker = tmp_path / "imported"
    for name in ("logging.py", "yaml.py", "json.py"):
        (sample / name).write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    report = call(scanner, scan_type="security", target_path=str(sample))
    assert report["files_scanned"] == 8
    assert not marker.exists()
