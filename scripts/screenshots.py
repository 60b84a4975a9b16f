#!/usr/bin/env python3
"""Screenshots of every dashboard page into docs/ui/*.png, from the real browser.

Starts the server the browser tests use (``tests/ui_browser.py``: the shipped manifests
plus an ``echo`` workflow) in a scratch folder, runs real work through the API so the
pages have something to show (``scan_and_fix`` on a copy of ``examples/sample_project``,
a few ``echo_flow`` runs, one left in flight), signs in with an admin key in headless
Chromium and saves each page at full height.

    .venv/bin/python scripts/screenshots.py [--out docs/ui]
"""

# ruff: noqa: S603 (a developer script running git on its own scratch folder)

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402
from ui_browser import UiServer, chromium  # noqa: E402

PAGES = [
    ("login", "/ui/login"),
    ("overview", "/ui/"),
    ("graphs", "/ui/graph"),
    ("runs", "/ui/runs"),
    ("run", "RUN"),
    ("run-live", "LIVE"),
    ("revisions", "/ui/revisions"),
    ("revision", "/ui/revisions/2"),
    ("security", "/ui/security"),
    ("audit", "/ui/audit"),
]


def start(http: httpx.Client, workflow: str, params: dict[str, Any], wait: bool) -> str:
    answer = http.post(
        "/api/agents/registry/workflow" + ("?wait=true" if wait else ""),
        json={"workflow_name": workflow, "parameters": params},
    )
    answer.raise_for_status()
    return str(answer.json()["run_id"])


def prepare(server: UiServer, admin: str) -> tuple[str, str]:
    """Real work through the API; returns (a finished scan_and_fix run, a run in flight)."""
    project = server.root / "sample_project"
    shutil.copytree(ROOT / "examples" / "sample_project", project)
    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=server.base, headers=headers, timeout=300) as http:
        for word in ("hello", "again"):
            server.gate.write_text("go")
            start(http, "echo_flow", {"word": word}, wait=True)
        params = {"target_path": str(project), "dry_run": True}
        start(http, "scan_and_fix", params, wait=True)
        finished = start(http, "scan_and_fix", {**params, "scan_type": "quick"}, wait=True)
        server.gate.unlink()
        live = start(http, "echo_flow", {"word": "waiting"}, wait=False)
        time.sleep(0.5)  # let its first step start
    return finished, live


def changed_revision(server: UiServer) -> None:
    """A second revision (one agent changed) so the revisions page has a diff to show."""
    from api_fixtures import apply_tree  # noqa: PLC0415

    seo = server.tree / "agents" / "seo.yaml"
    seo.write_text(seo.read_text().replace("priority: medium", "priority: high"))
    git = ["git", "-C", str(server.tree), "-c", "user.name=docs", "-c", "user.email=docs@example"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "seo: high priority"], check=True)
    apply_tree(server.url, server.tree)  # revision 2 records the commit
    assert server.system is not None
    manager = server.system.security_manager()
    for number in (1, 2):
        manager.audit_manifests_applied(number, actor="screenshots")


def shoot(driver: Any, url: str, path: Path) -> None:
    """The whole page (up to 2,400 px tall) at 1,360 px wide."""
    driver.get(url)
    time.sleep(0.4)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    clip = {"x": 0, "y": 0, "width": 1360, "height": min(height, 2400), "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ["DEVSKYY_ALLOWED_MODULES"] = "fake_workflow_agents"
    with tempfile.TemporaryDirectory(prefix="devskyy-shots-") as tmp:
        root = Path(tmp)
        os.chdir(root)  # the shipped agents' allowedRoots is "."
        with UiServer(root) as server:
            changed_revision(server)
            assert server.system is not None
            server.system.manifests_tree = server.tree  # as watch --serve does
            admin = server.key("admin", "alice")
            for role, who in (("operator", "bob"), ("guest", "carol"), ("service", "ci-bot")):
                server.key(role, who)
            manager = server.system.security_manager()
            manager.revoke_api_key(manager.generate_api_key("old-bot", "service").key_id)
            finished, live = prepare(server, admin)
            with chromium(1360, 900) as driver:
                driver.get(f"{server.base}/ui/login")
                driver.save_screenshot(str(args.out / "login.png"))
                field = driver.find_element("id", "api_key")
                field.send_keys(admin)
                field.submit()
                time.sleep(0.5)
                for name, path in PAGES[1:]:
                    target = {"RUN": f"/ui/runs/{finished}", "LIVE": f"/ui/runs/{live}"}.get(
                        path, path
                    )
                    shoot(driver, f"{server.base}{target}", args.out / f"{name}.png")
                    print(f"{args.out / name}.png  <- {target}")
            server.gate.write_text("go")  # let the run in flight finish before stopping


if __name__ == "__main__":
    main()
