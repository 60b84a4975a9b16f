"""deploy/devskyy-watch.service: hardened, and consistent with the daemon's exit codes.

``systemd-analyze security --offline=true`` must rate the unit 3.0 or lower (it rated 7.9
before); the test runs wherever systemd-analyze is installed. The unit must not restart a
daemon forever for what a restart cannot fix (a refused lease, an unusable store URL), and
the exit codes it names are the daemon's and docs/cli.md's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from devskyy.runtime.daemon import (
    EXIT_ERROR,
    EXIT_LEASE_LOST,
    EXIT_LEASE_REFUSED,
    EXIT_OK,
    EXIT_STORE_CONFIG,
)

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "devskyy-watch.service"


def _settings() -> dict[str, list[str]]:
    """Every ``Key=value`` of the unit (keys may repeat, as systemd allows)."""
    found: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key, []).append(value)
    return found


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_rates_the_unit_3_or_lower() -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r"Overall exposure level for devskyy-watch\.service: (\d+\.\d+)", done.stdout)
    assert found is not None, done.stdout + done.stderr
    assert float(found.group(1)) <= 3.0, done.stdout


def test_the_hardening_the_security_review_asked_for_is_there() -> None:
    unit = _settings()
    assert unit["UMask"] == ["0077"]
    assert unit["CapabilityBoundingSet"] == [""]
    for flag in (
        "PrivateDevices",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectClock",
        "RestrictNamespaces",
        "NoNewPrivileges",
    ):
        assert unit[flag] == ["true"], flag
    assert unit["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert "@system-service" in unit["SystemCallFilter"]
    assert unit["SystemCallArchitectures"] == ["native"]


def test_a_refused_lease_or_a_broken_store_url_is_not_restarted_forever() -> None:
    unit = _settings()
    [prevent] = unit["RestartPreventExitStatus"]
    assert sorted(int(code) for code in prevent.split()) == [EXIT_LEASE_REFUSED, EXIT_STORE_CONFIG]
    assert unit["Restart"] == ["on-failure"]  # 1 and 4 are restarted (4 comes back standing by)
    [start] = unit["ExecStart"]
    assert " watch " in start
    assert "--standby" in start  # a second server waits for the lease instead of exiting
    assert "--log-format json" in start


def test_the_exit_codes_are_documented_as_the_daemon_uses_them() -> None:
    docs = (ROOT / "docs" / "cli.md").read_text()
    section = docs[docs.index("**Exit codes of watch**") :]
    rows = dict(re.findall(r"^\| (\d) \| (.+?) \|", section, flags=re.MULTILINE))
    assert rows[str(EXIT_OK)].startswith("stopped by SIGTERM/SIGINT")
    assert rows[str(EXIT_ERROR)].startswith("an error at start")
    assert rows[str(EXIT_LEASE_REFUSED)].startswith("another daemon holds the store's lease")
    assert rows[str(EXIT_LEASE_LOST)].startswith("the lease was taken over")
    assert rows[str(EXIT_STORE_CONFIG)].startswith("the state store URL cannot be used")
