"""The dashboard in a real browser: headless Chromium against a real uvicorn server.

One server (shipped manifests + an echo workflow whose first step waits for a file) and
one browser serve the module; each test signs in with its own key and starts from an
empty cookie jar.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_fixtures import post_login
from ui_browser import SHIPPED_AGENTS, UiServer, chromium, require_browser

pytestmark = pytest.mark.slow

WAIT = 20.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    require_browser()
    old = os.environ.get("DEVSKYY_ALLOWED_MODULES")
    os.environ["DEVSKYY_ALLOWED_MODULES"] = "fake_workflow_agents"
    try:
        with UiServer(tmp_path_factory.mktemp("ui")) as running:
            yield running
    finally:
        if old is None:
            os.environ.pop("DEVSKYY_ALLOWED_MODULES", None)
        else:
            os.environ["DEVSKYY_ALLOWED_MODULES"] = old


@pytest.fixture(scope="module")
def browser(server: UiServer) -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def page(browser: Any, server: UiServer) -> Any:
    browser.get(f"{server.base}/ui/login")
    browser.delete_all_cookies()
    return browser


def wait_for(driver: Any, condition: Any, timeout: float = WAIT) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def sign_in(driver: Any, server: UiServer, key: str, start: str = "/ui/") -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    driver.get(f"{server.base}{start}")
    assert driver.current_url.startswith(f"{server.base}/ui/login?next=")
    field = driver.find_element(By.ID, "api_key")
    field.send_keys(key)
    field.submit()
    wait_for(driver, lambda d: not d.current_url.startswith(f"{server.base}/ui/login"))


def nav_links(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    return [a.text for a in driver.find_elements(By.CSS_SELECTOR, "header nav a")]


def test_sign_in_then_the_overview_lists_every_shipped_agent(page: Any, server: UiServer) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    sign_in(page, server, server.key("operator"))
    assert page.current_url == f"{server.base}/ui/"
    assert page.title == "Overview · devskyy"
    rows = page.find_elements(By.CSS_SELECTOR, "tr[data-agent]")
    listed = {row.get_attribute("data-agent") for row in rows}
    assert listed == {*SHIPPED_AGENTS, "echo"}  # every shipped agent, plus the test's own
    scanner = page.find_element(By.CSS_SELECTOR, 'tr[data-agent="scanner"]')
    assert "✓ healthy" in scanner.text  # status as a glyph and a word, not colour alone
    assert "● closed" in scanner.text  # the breaker
    assert nav_links(page) == ["Overview", "Graphs", "Runs", "Revisions", "Security", "Audit"]
    cookie = page.get_cookie("devskyy_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui"
    assert cookie["secure"] is False  # plain http on 127.0.0.1; https sets it (unit test)
    assert page.execute_script("return document.cookie") == ""  # scripts cannot read it


def test_a_wrong_key_stays_on_the_login_page_with_the_reason(page: Any, server: UiServer) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    page.get(f"{server.base}/ui/login")
    field = page.find_element(By.ID, "api_key")
    field.send_keys("dsk_000000000000_" + "a" * 39)
    field.submit()
    alert = wait_for(page, lambda d: d.find_element(By.CSS_SELECTOR, "[role=alert]"))
    assert alert.text == "Sign-in refused: malformed (checksum mismatch)."
    assert page.get_cookie("devskyy_session") is None


def test_a_run_started_over_the_api_appears_and_its_steps_change_live(
    page: Any, server: UiServer
) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    key = server.key("operator", "ui-live")
    sign_in(page, server, key)
    started = httpx.post(
        f"{server.base}/api/agents/registry/workflow",
        json={"workflow_name": "echo_flow", "parameters": {"word": "hi"}},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]

    page.get(f"{server.base}/ui/runs?workflow=echo_flow")
    link = page.find_element(By.CSS_SELECTOR, f'tr[data-run="{run_id}"] a')
    link.click()
    wait_for(page, lambda d: d.current_url == f"{server.base}/ui/runs/{run_id}")

    def step_state(name: str) -> str:
        row = page.find_element(By.CSS_SELECTOR, f'#steps tr[data-step="{name}"]')
        return str(row.find_element(By.CSS_SELECTOR, "[data-field=status]").text)

    def node_state(name: str) -> str:
        node = page.find_element(By.CSS_SELECTOR, f'svg.graph g[data-node="{name}"]')
        return str(node.get_attribute("class"))

    wait_for(page, lambda _d: step_state("first") == "▶ running")
    assert step_state("second") == "○ pending"
    page.execute_script("window.__samePage = 'yes'")  # gone if the page reloaded

    server.gate.write_text("go")  # the first step's agent waits for this file

    wait_for(page, lambda _d: step_state("second") == "✓ succeeded")
    assert step_state("first") == "✓ succeeded"
    assert node_state("first") == "node state-succeeded"
    assert node_state("second") == "node state-succeeded"
    status = page.find_element(By.ID, "run-status")
    wait_for(page, lambda _d: status.text == "✓ succeeded")
    assert page.execute_script("return window.__samePage") == "yes"
    wait_for(page, lambda d: "has ended" in d.find_element(By.ID, "live-note").text)


def test_a_guest_sees_no_audit_page(page: Any, server: UiServer) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    sign_in(page, server, server.key("guest"))
    assert page.current_url == f"{server.base}/ui/"
    assert nav_links(page) == ["Overview", "Graphs"]
    # Guests read the listing but not each agent's figures.
    scanner = page.find_element(By.CSS_SELECTOR, 'tr[data-agent="scanner"]')
    assert "details need read agents/scanner" in scanner.text
    page.get(f"{server.base}/ui/audit")
    assert page.find_element(By.TAG_NAME, "h1").text == "Not allowed"
    assert "may not read audit" in page.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert page.find_elements(By.ID, "audit") == []


def test_a_forged_cookie_is_refused(page: Any, server: UiServer) -> None:
    page.get(f"{server.base}/ui/login")
    page.add_cookie({"name": "devskyy_session", "value": "forged-" + "x" * 36, "path": "/ui"})
    page.get(f"{server.base}/ui/security")
    assert page.current_url == f"{server.base}/ui/login?next=/ui/security"
    assert page.get_cookie("devskyy_session") is None  # the server told the browser to drop it


def test_signing_out_ends_the_session_on_the_server(page: Any, server: UiServer) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    sign_in(page, server, server.key("analyst"))
    session = page.get_cookie("devskyy_session")["value"]
    with httpx.Client(base_url=server.base, cookies={"devskyy_session": session}) as http:
        assert http.get("/ui/runs").status_code == 200
        page.find_element(By.CSS_SELECTOR, "form.who button").click()
        wait_for(page, lambda d: d.current_url == f"{server.base}/ui/login")
        again = http.get("/ui/runs")
    assert again.status_code == 303  # the old cookie no longer opens anything
    assert again.headers["location"] == "/ui/login?next=/ui/runs"


def test_the_keyboard_reaches_every_link(page: Any, server: UiServer) -> None:
    from selenium.webdriver.common.action_chains import ActionChains  # noqa: PLC0415
    from selenium.webdriver.common.keys import Keys  # noqa: PLC0415

    sign_in(page, server, server.key("operator", "ui-keys"))
    reached = []
    for _ in range(12):
        ActionChains(page).send_keys(Keys.TAB).perform()
        reached.append(
            page.execute_script(
                "const e = document.activeElement;"
                "return (e.tagName + ' ' + (e.textContent || '').trim()).slice(0, 40);"
            )
        )
    assert reached[:9] == [
        "A Skip to content",
        "A devskyy",
        "A Overview",
        "A Graphs",
        "A Runs",
        "A Revisions",
        "A Security",
        "A Audit",
        "BUTTON Sign out",
    ]
    ActionChains(page).send_keys(Keys.SHIFT, Keys.TAB, Keys.NULL).perform()  # back to Audit
    ActionChains(page).send_keys(Keys.SHIFT, Keys.TAB, Keys.NULL).perform()  # Security
    ActionChains(page).send_keys(Keys.SHIFT, Keys.TAB, Keys.NULL).perform()  # Revisions
    ActionChains(page).send_keys(Keys.SHIFT, Keys.TAB, Keys.NULL).perform()  # Runs
    ActionChains(page).send_keys(Keys.ENTER).perform()
    wait_for(page, lambda d: d.current_url == f"{server.base}/ui/runs")


def test_static_pages_work_without_javascript(server: UiServer, tmp_path: Path) -> None:
    # The pages are plain HTML: every page reads complete without running a script.
    key = server.key("admin", "ui-nojs")
    with httpx.Client(base_url=server.base) as http:
        signed = post_login(http, {"api_key": key, "next": "/ui/graph"})
        assert signed.status_code == 303
        assert signed.headers["location"] == "/ui/graph"
        for path in ("/ui/", "/ui/graph", "/ui/runs", "/ui/revisions", "/ui/security", "/ui/audit"):
            got = http.get(path)
            assert got.status_code == 200, path
            assert "<script" not in got.text, path  # only the run page follows a run live


def test_behind_a_trusted_tls_proxy_the_cookie_is_secure(server: UiServer) -> None:
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (its forwarded_allow_ips default).
    key = server.key("guest", "ui-proxied")
    with httpx.Client(base_url=server.base) as http:
        # The form's token cookie is Secure too, so the client (plain http to the proxy's
        # back end) would not send it back: pass it along as the proxy would.
        https = {"X-Forwarded-Proto": "https"}
        form = http.get("/ui/login", headers=https)
        assert "; Secure" in form.headers["set-cookie"]
        token = form.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        proxied = http.post(
            "/ui/login",
            data={"api_key": key, "login_token": token},
            headers={**https, "Cookie": f"devskyy_login={token}"},
        )
        direct = post_login(http, {"api_key": key})
    assert "; Secure" in proxied.headers["set-cookie"]
    assert "; Secure" not in direct.headers["set-cookie"]
