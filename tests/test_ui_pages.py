"""The dashboard over HTTP (TestClient): sign-in, sessions, what each role sees, CSRF, SSE."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import ApiWorld, browser, post_login, signed_in
from sqlalchemy import select

from devskyy.adapters.run_store import SqlRunStore
from devskyy.adapters.task_runs import SqlTaskRuns, TaskRun
from devskyy.adapters.ui_sessions import SqlUiSessions, UiSession, session_hash, ui_sessions_table
from devskyy.model.runs import RunRecord, RunStatus, StepRecord, StepStatus

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    return tmp_path / "go"


@pytest.fixture
def world(tmp_path: Path, gate: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiWorld]:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path, code=False, wait_for=str(gate))
    yield w
    w.close()


def session_rows(world: ApiWorld) -> list[str]:
    with world.system.engine.connect() as conn:
        return list(conn.execute(select(ui_sessions_table.c.id_hash)).scalars())


def add_run(world: ApiWorld, run_id: str, status: RunStatus, workflow: str = "echo_flow") -> None:
    steps = (StepRecord("first", StepStatus.SUCCEEDED, 1), StepRecord("second"))
    SqlRunStore(world.system.engine).create(
        RunRecord(run_id, workflow, {"word": "x"}, status, created_at=1.0, steps=steps)
    )


# -- signing in -----------------------------------------------------------------------


def test_sign_in_sets_a_strict_http_only_expiring_cookie(world: ApiWorld) -> None:
    client = browser(world)
    first = client.get("/ui/runs?status=failed")
    assert first.status_code == 303
    assert first.headers["location"] == "/ui/login?next=/ui/runs%3Fstatus%3Dfailed"
    answer = post_login(
        client, {"api_key": world.key("operator"), "next": "/ui/runs?status=failed"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/runs?status=failed"
    cookie = answer.headers["set-cookie"]
    assert re.fullmatch(
        r"devskyy_session=[A-Za-z0-9_-]{43}; HttpOnly; Max-Age=28799; Path=/ui; SameSite=strict",
        cookie,
    ), cookie
    sid = cookie.split(";")[0].split("=", 1)[1]
    assert session_rows(world) == [session_hash(sid)]
    assert client.get("/ui/runs?status=failed").status_code == 200


def test_behind_tls_the_cookie_is_secure(world: ApiWorld) -> None:
    client = browser(world, "https://dash.example")
    answer = post_login(client, {"api_key": world.key("guest")})
    assert "; Secure" in answer.headers["set-cookie"]


def test_a_session_never_outlives_its_key(world: ApiWorld) -> None:
    new = world.security.generate_api_key("short", "guest", expires_in=864.0)
    answer = post_login(browser(world), {"api_key": new.key})
    max_age = int(re.search(r"Max-Age=(\d+)", answer.headers["set-cookie"]).group(1))  # type: ignore[union-attr]
    assert 860 <= max_age <= 864  # the key's 864 s, not the session's 8 hours


@pytest.mark.parametrize(
    ("api_key", "status", "message"),
    [
        ("", 401, "Enter an API key."),
        ("not-a-key", 401, "Sign-in refused: malformed ("),
        ("dsk_0123456789ab_" + "a" * 39, 401, "Sign-in refused: "),
    ],
)
def test_a_refused_sign_in_shows_why_and_opens_nothing(
    world: ApiWorld, api_key: str, status: int, message: str
) -> None:
    answer = post_login(browser(world), {"api_key": api_key})
    assert answer.status_code == status
    assert "devskyy_session=" not in answer.headers.get("set-cookie", "")
    assert f'<p class="alert" role="alert">{message}' in answer.text
    assert api_key == "" or api_key not in answer.text
    assert session_rows(world) == []


def test_failed_sign_ins_are_audited_and_block_the_source_like_the_api(
    world: ApiWorld,
) -> None:
    world.app.state.api.settings = type(world.settings)(
        **{**world.settings.__dict__, "block_sources": True}
    )
    client = browser(world)
    codes = [
        post_login(client, {"api_key": f"dsk_{i:012x}_" + "a" * 39}).status_code for i in range(12)
    ]
    assert codes[0] == 401
    assert codes[-1] == 403  # the address is blocked after repeated failures
    blocked = post_login(client, {"api_key": "dsk_0123456789ab_" + "b" * 39})
    assert blocked.status_code == 403
    assert "Blocked: too many failures. Ask an administrator." in blocked.text
    # As over the API, a working key is judged on its own, not by its address.
    assert post_login(client, {"api_key": world.key("guest")}).status_code == 303
    failed = world.security.get_audit_log(event_type="key.failed", limit=100)
    assert failed  # audited (rolled up) like the API's failures
    assert {e["actor"] for e in failed} == {"unauthenticated"}


@pytest.mark.parametrize(
    ("cookie", "field"),
    [(None, None), (None, "stolen"), ("mine", None), ("mine", "other")],
)
def test_a_login_form_posted_from_elsewhere_signs_no_one_in(
    world: ApiWorld, cookie: str | None, field: str | None
) -> None:
    # Login CSRF: another site posts the attacker's key to /ui/login; the browser sends no
    # devskyy_login cookie (SameSite=Strict), or one that does not match the posted token.
    client = browser(world)
    if cookie:
        client.cookies.set("devskyy_login", cookie, path="/ui/login")
    data = {"api_key": world.key("admin", "attacker")}
    if field:
        data["login_token"] = field
    answer = client.post("/ui/login", data=data)
    assert answer.status_code == 403
    assert "This sign-in form expired or came from another page; sign in again." in answer.text
    assert "devskyy_session=" not in answer.headers.get("set-cookie", "")
    assert session_rows(world) == []
    # The page it shows is a fresh form: signing in from it works.
    assert post_login(client, {"api_key": world.key("guest")}).status_code == 303


def test_the_login_form_sets_its_token_cookie_strict_and_scoped(world: ApiWorld) -> None:
    answer = browser(world).get("/ui/login")
    cookie = answer.headers["set-cookie"]
    assert re.fullmatch(
        r"devskyy_login=[A-Za-z0-9_-]{43}; HttpOnly; Max-Age=3600; Path=/ui/login; "
        r"SameSite=strict",
        cookie,
    ), cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    assert f'name="login_token" value="{token}"' in answer.text


def test_next_never_leaves_the_dashboard(world: ApiWorld) -> None:
    for target in ("https://evil.example/", "//evil.example/ui/", "/api/security/audit-log"):
        answer = post_login(browser(world), {"api_key": world.key("guest"), "next": target})
        assert answer.headers["location"] == "/ui/"


def test_a_forged_cookie_is_sent_to_the_login_page_and_cleared(world: ApiWorld) -> None:
    client = browser(world)
    client.cookies.set("devskyy_session", "forged", path="/ui")
    answer = client.get("/ui/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=/ui/"
    assert answer.headers["set-cookie"].startswith('devskyy_session=""; expires=')


def test_signing_in_purges_expired_sessions(world: ApiWorld) -> None:
    stale = UiSession("0123456789ab", "gone", "guest", 1.0, 2.0)
    SqlUiSessions(world.system.engine).create("stale-session", stale)
    assert session_rows(world) == [session_hash("stale-session")]
    client = signed_in(world, "guest")
    assert session_rows(world) == [session_hash(client.cookies["devskyy_session"])]


def test_a_revoked_key_ends_its_sessions(world: ApiWorld) -> None:
    new = world.security.generate_api_key("leaver", "analyst")
    client = browser(world)
    post_login(client, {"api_key": new.key})
    assert client.get("/ui/").status_code == 200
    world.security.revoke_api_key(new.key_id)
    assert client.get("/ui/").status_code == 303
    assert session_rows(world) == []


def test_sign_out_needs_the_form_token_and_ends_the_session_server_side(
    world: ApiWorld,
) -> None:
    client = signed_in(world, "analyst")
    page = client.get("/ui/")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    refused = client.post("/ui/logout", data={"csrf": "0" * 64})
    assert refused.status_code == 403
    assert "Bad or missing form token." in refused.text
    assert len(session_rows(world)) == 1
    cookie = client.cookies.get("devskyy_session")
    out = client.post("/ui/logout", data={"csrf": token})
    assert out.status_code == 303
    assert out.headers["location"] == "/ui/login"
    assert session_rows(world) == []
    replay = browser(world)
    replay.cookies.set("devskyy_session", cookie or "", path="/ui")
    assert replay.get("/ui/").status_code == 303


def test_pages_are_never_cached_and_allow_only_own_scripts(world: ApiWorld) -> None:
    page = signed_in(world, "admin").get("/ui/")
    assert page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    css = browser(world).get("/ui/static/ui.css")
    assert css.status_code == 200
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert browser(world).get("/ui/static/../app.py").status_code == 404
    assert browser(world).get("/ui/static/other.js").status_code == 404
    assert browser(world).get("/ui").headers["location"] == "/ui/"


def test_a_signed_in_request_counts_against_the_rate_limit(world: ApiWorld) -> None:
    world.app.state.api.settings = type(world.settings)(
        **{**world.settings.__dict__, "rate_limit": 3}
    )
    client = signed_in(world, "admin", "busy")  # sign-in is request 1
    assert client.get("/ui/").status_code == 200
    assert client.get("/ui/").status_code == 200
    limited = client.get("/ui/")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "Too many requests; try again in" in limited.text


# -- what each role sees ----------------------------------------------------------------


def test_a_guest_sees_the_listing_but_no_figures_runs_or_audit(world: ApiWorld) -> None:
    client = signed_in(world, "guest")
    page = client.get("/ui/")
    assert page.status_code == 200
    nav = page.text.split("</nav>")[0]
    assert re.findall(r'<li><a href="(/ui/[a-z]*)"', nav) == ["/ui/", "/ui/graph"]
    assert "details need <code>read agents/echo</code>" in page.text
    assert "Last revision" not in page.text  # revisions need read manifests
    audit = client.get("/ui/audit")
    assert audit.status_code == 403
    assert "Your key (role guest) may not read audit: " in audit.text
    assert client.get("/ui/runs").status_code == 403
    assert client.get("/ui/revisions").status_code == 403
    denied = world.security.get_audit_log(event_type="permission.denied", limit=10)
    assert {e["resource"] for e in denied} >= {"audit", "runs", "manifests"}


def test_an_operator_sees_figures_breakers_and_the_last_revision(world: ApiWorld) -> None:
    page = signed_in(world, "operator").get("/ui/")
    row = page.text.split('<tr data-agent="echo">')[1].split("</tr>")[0]
    assert "✓ healthy" in row
    assert "1/1" in row
    assert "● closed" in row
    assert "Last revision" in page.text
    assert 'href="/ui/revisions/1">#1</a>' in page.text
    assert "? unknown" in page.text  # serve without a tree cannot compare


def test_the_overview_compares_live_state_with_the_watched_tree(
    world: ApiWorld, tmp_path: Path
) -> None:
    tree = tmp_path / "manifests"
    world.system.manifests_tree = tree
    client = signed_in(world, "operator")
    assert "✓ in sync" in client.get("/ui/").text
    echo = tree / "agents" / "echo.yaml"
    echo.write_text(echo.read_text().replace("timeoutSeconds: 30", "timeoutSeconds: 31"))
    world.app.state.api.drift = None  # the 5-second cache
    page = client.get("/ui/").text
    assert "! drift" in page
    assert ": 0 to create, 1 to update, 0 to delete." in page
    echo.write_text("kind: Agent\n")
    world.app.state.api.drift = None
    assert "✗ tree invalid" in client.get("/ui/").text


def test_security_lists_keys_without_secrets_for_analysts_only(world: ApiWorld) -> None:
    secret = world.key("operator", "someone")
    key_id = secret.split("_")[1]
    analyst = signed_in(world, "analyst").get("/ui/security")
    assert analyst.status_code == 200
    assert f"<code>{key_id}</code>" in analyst.text
    assert secret not in analyst.text
    assert secret.split("_")[2] not in analyst.text
    operator = signed_in(world, "operator").get("/ui/security")
    assert operator.status_code == 200
    assert "Listing keys needs <code>read keys</code>." in operator.text
    assert f"<code>{key_id}</code>" not in operator.text


def test_the_audit_page_shows_events_and_the_verify_result(world: ApiWorld) -> None:
    client = signed_in(world, "admin", "auditor")
    broken = client.get("/ui/audit").text
    # The tree was applied without the CLI's audit hook: verify says so.
    assert "✗ chain broken</span> revision(s) 1 have no manifests.applied event" in broken
    world.security.audit_manifests_applied(1)
    page = client.get("/ui/audit?actor=auditor")
    assert page.status_code == 200
    assert "✓ chain intact" in page.text
    assert "events verified; head <code>" in page.text
    assert "<td>auditor</td>" in page.text


# -- graphs, runs, revisions ------------------------------------------------------------


def test_graphs_draw_agents_and_each_readable_workflow(world: ApiWorld) -> None:
    page = signed_in(world, "operator").get("/ui/graph").text
    assert page.count('<svg class="graph"') == 2  # the agents, echo_flow
    assert 'data-edge="first→second"' in page
    assert "<title>Workflow echo_flow</title>" in page


def test_runs_filter_by_workflow_and_status_and_page(world: ApiWorld) -> None:
    for i in range(55):
        add_run(world, f"ok{i:03d}", RunStatus.SUCCEEDED)
    add_run(world, "bad001", RunStatus.FAILED)
    add_run(world, "path001", RunStatus.SUCCEEDED, workflow="path_flow")
    client = signed_in(world, "operator")
    failed = client.get("/ui/runs?status=failed").text
    assert re.findall(r'<tr data-run="(\w+)">', failed) == ["bad001"]
    assert "1 run match" in failed
    path = client.get("/ui/runs?workflow=path_flow").text
    assert re.findall(r'<tr data-run="(\w+)">', path) == ["path001"]
    first = client.get("/ui/runs?workflow=echo_flow").text
    assert "56 runs match" in first
    assert len(re.findall(r'<tr data-run="(\w+)">', first)) == 50
    assert "page 1 of 2" in first
    second = client.get("/ui/runs?workflow=echo_flow&page=1").text
    assert len(re.findall(r'<tr data-run="(\w+)">', second)) == 6
    assert "1/2" in second  # steps done / total


def test_the_run_page_shows_the_dag_timeline_and_outputs(world: ApiWorld, gate: Path) -> None:
    gate.touch()
    started = world.client.post(
        "/api/agents/registry/workflow?wait=true",
        json={"workflow_name": "echo_flow", "parameters": {"word": "hey"}},
        headers={"X-API-Key": world.key("admin")},
    )
    run_id = started.json()["run_id"]
    page = signed_in(world, "operator").get(f"/ui/runs/{run_id}").text
    assert '<g class="node state-succeeded" data-node="second">' in page
    assert page.count('<span class="badge s-succeeded" data-field="status">✓ succeeded</span>') == 2
    assert page.count('<span class="badge s-succeeded">✓ succeeded</span>') == 2  # attempts
    assert '<span id="run-status" class="badge s-succeeded" aria-live="polite">' in page
    assert "<td>in-process</td>" in page
    assert "&#34;word&#34;: &#34;hey&#34;" in page  # params, escaped
    assert "Resume this run" not in page
    assert 'data-live="no"' in page


def test_resume_needs_execute_and_the_csrf_token(world: ApiWorld, gate: Path) -> None:
    gate.touch()
    add_run(world, "stopped1", RunStatus.CANCELLED)
    analyst = signed_in(world, "analyst")
    assert "Resume this run" not in analyst.get("/ui/runs/stopped1").text
    operator = signed_in(world, "operator")
    page = operator.get("/ui/runs/stopped1").text
    assert "Resume this run" in page
    token = CSRF.search(page).group(1)  # type: ignore[union-attr]
    assert operator.post("/ui/runs/stopped1/resume", data={}).status_code == 403
    assert operator.post("/ui/runs/stopped1/resume", data={"csrf": "f" * 64}).status_code == 403
    other = CSRF.search(analyst.get("/ui/").text).group(1)  # type: ignore[union-attr]
    assert operator.post("/ui/runs/stopped1/resume", data={"csrf": other}).status_code == 403
    assert SqlRunStore(world.system.engine).get("stopped1").status is RunStatus.CANCELLED
    own = CSRF.search(analyst.get("/ui/runs/stopped1").text).group(1)  # type: ignore[union-attr]
    denied = analyst.post("/ui/runs/stopped1/resume", data={"csrf": own})
    assert denied.status_code == 403
    assert "may not execute runs/stopped1" in denied.text
    done = operator.post("/ui/runs/stopped1/resume", data={"csrf": token})
    assert done.status_code == 303
    assert done.headers["location"] == "/ui/runs/stopped1"
    view = world.client.get(
        "/api/runs/stopped1", params={"wait": 10}, headers={"X-API-Key": world.key("admin")}
    ).json()
    assert view["status"] == "succeeded"
    again = operator.post("/ui/runs/stopped1/resume", data={"csrf": token})
    assert again.status_code == 409
    assert "nothing to resume" in again.text or "succeeded" in again.text


def test_the_event_stream_sends_state_then_end(world: ApiWorld, gate: Path) -> None:
    add_run(world, "done0001", RunStatus.FAILED)
    client = signed_in(world, "operator")
    with client.stream("GET", "/ui/runs/done0001/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    events = text.split("\n\n")
    assert events[0] == "retry: 1000"
    assert events[1].startswith("event: state\ndata: {")
    assert '"status":"failed","finished":true' in events[1]
    assert '"first":{"status":"succeeded","attempts":1' in events[1]
    assert events[2] == "event: end\ndata: {}"
    guest = signed_in(world, "guest")
    assert guest.get("/ui/runs/done0001/events").status_code == 403


def test_revisions_show_each_plan_diff_and_commit(world: ApiWorld) -> None:
    client = signed_in(world, "operator")
    listing = client.get("/ui/revisions").text
    assert 'href="/ui/revisions/1">#1</a>' in listing
    assert "not in git" in listing
    diff = client.get("/ui/revisions/1").text
    assert '<span class="a-create">+ create Agent/echo</span>' in diff
    assert '<span class="a-create">+ create Workflow/echo_flow</span>' in diff
    assert client.get("/ui/revisions/2").status_code == 404


def test_every_template_and_static_file_ships_in_the_wheel() -> None:
    root = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["devskyy"]
    package = root / "devskyy"
    assets = [
        p.relative_to(package).as_posix()
        for folder in ("api/ui/templates", "api/ui/static")
        for p in (package / folder).iterdir()
    ]
    assert len(assets) >= 13
    unshipped = [a for a in assets if not any(fnmatch.fnmatch(a, pat) for pat in patterns)]
    assert unshipped == []


def test_orchestrator_tasks_have_pages_too(world: ApiWorld, gate: Path) -> None:
    gate.touch()
    admin = {"X-API-Key": world.key("admin")}
    body = {"task_type": "echo-it", "parameters": {"x": 1}, "required_capabilities": ["echo"]}
    started = world.client.post("/api/agents/orchestrator/execute", json=body, headers=admin)
    assert started.status_code == 202, started.text
    task_id = started.json()["run_id"]
    world.client.get(f"/api/runs/{task_id}", params={"wait": 10}, headers=admin)
    client = signed_in(world, "operator")
    page = client.get(f"/ui/runs/{task_id}")  # a task runs as a workflow run now
    assert page.status_code == 200
    assert f"<h1>Run <code>{task_id}</code></h1>" in page.text
    # A task recorded before tasks were workflow runs has its own page.
    tasks = SqlTaskRuns(world.system.engine)
    tasks.create(TaskRun("legacy000001", "echo-it", body, "running", None, 1.0))
    tasks.update("legacy000001", status="succeeded", result={"ok": 1}, finished_at=2.0)
    legacy = client.get("/ui/runs/legacy000001")
    assert legacy.status_code == 200
    assert "<h1>Task <code>legacy000001</code></h1>" in legacy.text
    assert "<dd>echo-it</dd>" in legacy.text
    assert '<span class="badge s-succeeded">✓ succeeded</span>' in legacy.text
    assert "&#34;ok&#34;: 1" in legacy.text
    assert "Start this task again" not in legacy.text  # only interrupted or cancelled ones
    missing = client.get("/ui/runs/nosuchrun")
    assert missing.status_code == 404
    assert "No run has the id nosuchrun." in missing.text
