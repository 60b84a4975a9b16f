"""The security agent: secrets (detect-secrets), dependency specs and risky settings
on a copy of the sample project, each check alone, and that no secret leaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from codecheck_helpers import call, copy_sample, findings, make_agent

from devskyy.agents.codecheck import security
from devskyy.agents.security import SecurityAgent
from devskyy.errors import PermanentError

SECRET_VALUE = "f3b9c2e41d8a6f05e9b1c4d2a8f6e3b7c1d9"
EXPECTED = [
    ("inventory/config.py", 5, "CFG001", "devskyy-config", "medium", False),
    ("inventory/config.py", 6, "secret/hex-high-entropy-string", "detect-secrets", "high", False),
    ("inventory/config.py", 22, "CFG002", "devskyy-config", "high", False),
    ("requirements.txt", 3, "DEP001", "devskyy-deps", "low", False),
    ("requirements.txt", 4, "DEP002", "devskyy-deps", "medium", False),
]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return copy_sample(tmp_path)


@pytest.fixture
def agent(tmp_path: Path) -> SecurityAgent:
    return make_agent(SecurityAgent, tmp_path, "security")


def test_sample_findings(agent: SecurityAgent, sample: Path) -> None:
    report = call(agent, target_path=str(sample))
    assert findings(report) == EXPECTED
    assert report["files_scanned"] == 9
    assert report["counts"] == {
        "total": 5,
        "fixable": 0,
        "by_severity": {"critical": 0, "high": 2, "medium": 2, "low": 1},
        "by_tool": {"detect-secrets": 1, "devskyy-config": 2, "devskyy-deps": 2},
    }
    secret = report["issues"][1]
    assert secret["message"] == "Possible secret (Hex High Entropy String); value hidden"
    assert secret["action"] == security.ROTATE_ACTION
    assert SECRET_VALUE not in json.dumps(report)


def test_each_check_alone(agent: SecurityAgent, sample: Path) -> None:
    only = {
        check: {i["rule"] for i in call(agent, target_path=str(sample), checks=[check])["issues"]}
        for check in ("secrets", "dependencies", "config")
    }
    assert only == {
        "secrets": {"secret/hex-high-entropy-string"},
        "dependencies": {"DEP001", "DEP002"},
        "config": {"CFG001", "CFG002"},
    }
    with pytest.raises(PermanentError, match=r"^invalid security_scan parameters: checks\.0"):
        call(agent, target_path=str(sample), checks=["cves"])


def test_secrets_in_any_text_file_but_not_ignored_ones(agent: SecurityAgent, sample: Path) -> None:
    (sample / "deploy").mkdir()
    (sample / "deploy" / "app.env").write_text("DEBUG=1\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n")
    (sample / "generated").mkdir()
    (sample / "generated" / "keys.env").write_text("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n")
    (sample / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00AKIAIOSFODNN7EXAMPLE")
    report = call(agent, target_path=str(sample))
    extra = [f for f in findings(report) if f[0].startswith(("deploy", "generated", "logo"))]
    assert extra == [
        ("deploy/app.env", 1, "CFG001", "devskyy-config", "medium", False),
        ("deploy/app.env", 2, "secret/aws-access-key", "detect-secrets", "high", False),
    ]
    assert "AKIAIOSFODNN7EXAMPLE" not in json.dumps(report)


def test_requirements_rules() -> None:
    text = (
        "# comment\n"
        "flask==3.0.0\n"
        "requests>=2.31\n"
        "rich\n"
        "--index-url http://pypi.internal/simple\n"
        "--trusted-host pypi.internal\n"
        "lib @ git+https://example.org/lib.git@v1\n"
        "lib2 @ git+https://example.org/lib2.git@" + "a" * 40 + "\n"
        "lib3 @ http://example.org/lib3.tar.gz\n"
        "-e git+https://example.org/lib4.git#egg=lib4\n"
        "-r other.txt\n"
    )
    got = [(i.line, i.rule, i.severity) for i in security.requirements_txt("r.txt", text)]
    assert got == [
        (4, "DEP001", "low"),
        (5, "DEP003", "high"),
        (6, "DEP003", "high"),
        (7, "DEP002", "medium"),
        (9, "DEP003", "high"),
        (10, "DEP002", "medium"),
    ]


def test_pyproject_dependencies() -> None:
    text = (
        "[project]\n"
        'name = "x"\n'
        'dependencies = ["click>=8", "attrs"]\n'
        "[project.optional-dependencies]\n"
        "dev = [\n"
        '    "pytest",\n'
        "]\n"
    )
    got = [(i.line, i.rule, i.message) for i in security.pyproject("pyproject.toml", text)]
    assert got == [
        (3, "DEP001", "`attrs` has no version constraint: any future release installs"),
        (6, "DEP001", "`pytest` has no version constraint: any future release installs"),
    ]


def test_python_config_rules() -> None:
    source = (
        "DEBUG = True\n"
        "ALLOWED_HOSTS = ['*']\n"
        "CORS_ALLOW_ALL_ORIGINS = True\n"
        "SESSION_COOKIE_SECURE = False\n"
        "class Prod:\n"
        "    DEBUG = False\n"
        "class Dev:\n"
        "    DEBUG = True\n"
        "def f():\n"
        "    DEBUG = True\n"  # a local, not a setting
        "    return httpx.get(u, verify=False)\n"
    )
    got = [(i.line, i.rule) for i in security.python_config("settings.py", source)]
    assert got == [
        (1, "CFG001"),
        (2, "CFG003"),
        (3, "CFG004"),
        (4, "CFG005"),
        (8, "CFG001"),
        (11, "CFG002"),
    ]


def test_text_config_debug_switches() -> None:
    text = "DEBUG=false\nexport DEBUG=1\ndebug: true\nDEBUG_TOOLBAR=1\n"
    assert [i.line for i in security.text_config(".env", text)] == [2, 3]
