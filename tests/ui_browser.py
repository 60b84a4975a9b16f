"""Helpers for the dashboard's browser tests: a real server and a real headless Chromium.

``UiServer(root)`` copies the shipped manifests (agents, workflows, roles) plus an
``echo`` agent and ``echo_flow`` workflow whose first step waits for a file (so a test
decides when a run moves on), applies them to a scratch SQLite store, and serves
``create_app`` with uvicorn on 127.0.0.1 in a thread with its own event loop (the
system is opened in that loop, as ``devskyy serve`` does).

``chromium()`` starts Debian's Chromium through Selenium and the system chromedriver
(``Service("/usr/bin/chromedriver")``, ``SE_OFFLINE=true``: Selenium Manager never
downloads anything). Without the binaries the tests fail under CI (``CI=true``, where
``scripts/test-deps`` installs them) and skip locally with the reason.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_fixtures import ECHO, ROOT, apply_tree, free_port, wait_until

from devskyy.api import ApiSettings, create_app
from devskyy.runtime.background import background_of
from devskyy.runtime.system import System, open_system

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
SHIPPED_AGENTS = sorted(
    doc["metadata"]["name"]
    for path in (ROOT / "manifests" / "agents").glob("*.yaml")
    for doc in yaml.safe_load_all(path.read_text())
    if doc and doc.get("kind") == "Agent"
)


def require_browser() -> None:
    """Fail under CI, skip elsewhere, when Chromium, its driver or Selenium is missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401, PLC0415
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    if not missing:
        return
    reason = f"browser tests need {', '.join(missing)} (scripts/test-deps installs them)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


@contextmanager
def chromium(width: int = 1360, height: int = 900) -> Iterator[Any]:
    """A headless Chromium session (Selenium WebDriver); quit on exit."""
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    profile = tempfile.mkdtemp(prefix="devskyy-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def write_shipped_tree(root: Path, wait_for: Path) -> Path:
    """The shipped manifests plus the echo agent and ``echo_flow`` (waiting for a file)."""
    tree = root / "manifests"
    shutil.copytree(ROOT / "manifests", tree)
    (tree / "agents" / "echo.yaml").write_text(ECHO.format(wait_for=wait_for))
    return tree


class UiServer:
    """``create_app`` on uvicorn over a scratch store, in a background thread."""

    def __init__(self, root: Path, **settings: Any) -> None:
        self.root = root
        self.gate = root / "release-first-step"
        self.url = f"sqlite:///{root / 'state.db'}"
        self.tree = write_shipped_tree(root, self.gate)
        apply_tree(self.url, self.tree)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.settings = ApiSettings(
            workspace_roots=(root,), rate_limit=10_000, block_sources=False, **settings
        )
        self.system: System | None = None
        self._server: Any = None
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ui-server", daemon=True)

    def __enter__(self) -> UiServer:
        self._thread.start()
        wait_until(
            lambda: self._failed is not None or (self._server is not None and self._server.started),
            "the dashboard server",
        )
        if self._failed is not None:
            raise self._failed
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by __enter__
            self._failed = exc

    async def _main(self) -> None:
        import uvicorn  # noqa: PLC0415

        system = await open_system(self.url)
        self.system = system
        try:
            config = uvicorn.Config(
                create_app(system, self.settings),
                host="127.0.0.1",
                port=self.port,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=2,
            )
            self._server = uvicorn.Server(config)
            await self._server.serve()
            await background_of(system).drain(5.0)
        finally:
            await system.close()

    def key(self, role: str, principal: str | None = None) -> str:
        """A fresh API key for ``role`` (the secret, shown once)."""
        assert self.system is not None
        manager = self.system.security_manager()
        return manager.generate_api_key(principal or f"ui-{role}", role).key
