"""The publisher: atomic Markdown + HTML files idempotent by slug, or a webhook with retries."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from devskyy.adapters.clock import FakeClock
from devskyy.agents.publisher import PublisherAgent, read_front_matter, write_atomic
from devskyy.errors import PermanentError, TemporaryError
from devskyy.runtime.agent import AgentContext

ARTICLE = {
    "title": "Capsule Wardrobe Basics",
    "slug": "capsule-wardrobe-basics",
    "meta_description": "Build a small wardrobe that works.",
    "body": "# Capsule Wardrobe Basics\n\nFewer, better clothes. <script>x()</script>\n\n"
    "## Start\n\nPick ten pieces. See [the guide](https://example.com/guide).\n",
    "keywords": ["capsule wardrobe", "minimalism"],
    "author": "Ada",
}
START = 1_700_000_000.0  # 2023-11-14T22:13:20+00:00


def make(
    tmp_path: Path, config: dict[str, Any] | None = None, clock: FakeClock | None = None
) -> PublisherAgent:
    agent = PublisherAgent()
    agent.bind(
        AgentContext(
            name="publisher",
            config=config or {},
            clock=clock or FakeClock(START),
            state_dir=tmp_path / "state",
        )
    )
    assert asyncio.run(agent.initialize()) is True
    return agent


def publish(agent: PublisherAgent, article: dict[str, Any] | None = None) -> dict[str, Any]:
    return asyncio.run(agent.execute_core_function(article=article or ARTICLE))


def test_default_folder_is_under_the_state_dir_and_files_have_front_matter(
    tmp_path: Path,
) -> None:
    out = publish(make(tmp_path, {"base_url": "https://blog.example.com/"}))
    folder = tmp_path / "state" / "published"
    assert out["status"] == "created"
    assert out["target"] == "files"
    assert out["files"] == {
        "markdown": str(folder / "capsule-wardrobe-basics.md"),
        "html": str(folder / "capsule-wardrobe-basics.html"),
    }
    assert out["url"] == "https://blog.example.com/capsule-wardrobe-basics/"
    md = (folder / "capsule-wardrobe-basics.md").read_text()
    assert md.startswith("---\n")
    front = read_front_matter(md)
    assert front == {
        "title": "Capsule Wardrobe Basics",
        "slug": "capsule-wardrobe-basics",
        "description": "Build a small wardrobe that works.",
        "keywords": ["capsule wardrobe", "minimalism"],
        "language": "en",
        "date": "2023-11-14T22:13:20+00:00",
        "author": "Ada",
        "url": "https://blog.example.com/capsule-wardrobe-basics/",
    }
    assert md.endswith("\n---\n\n" + ARTICLE["body"])
    html = (folder / "capsule-wardrobe-basics.html").read_text()
    assert "<title>Capsule Wardrobe Basics</title>" in html
    assert '<meta name="description" content="Build a small wardrobe that works.">' in html
    assert '<link rel="canonical" href="https://blog.example.com/capsule-wardrobe-basics/">' in html
    assert "<h1>Capsule Wardrobe Basics</h1>" in html
    assert '<a href="https://example.com/guide">the guide</a>' in html
    assert "<script>" not in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html
    assert (folder / "capsule-wardrobe-basics.md").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in folder.iterdir()) == [
        "capsule-wardrobe-basics.html",
        "capsule-wardrobe-basics.md",
    ]  # no temporary files left behind


def test_same_content_is_not_rewritten(tmp_path: Path) -> None:
    clock = FakeClock(START)
    agent = make(tmp_path, {"output_dir": str(tmp_path / "site")}, clock)
    first = publish(agent)
    md = tmp_path / "site" / "capsule-wardrobe-basics.md"
    before = md.stat()
    clock.advance(3600)
    again = publish(agent)
    assert again["status"] == "unchanged"
    assert again["sha256"] == first["sha256"]
    after = md.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_changed_content_is_updated_and_keeps_the_first_date(tmp_path: Path) -> None:
    clock = FakeClock(START)
    agent = make(tmp_path, {"outputDir": str(tmp_path / "site")}, clock)
    publish(agent)
    clock.advance(86400)
    changed = {**ARTICLE, "body": ARTICLE["body"] + "\nOne more line.\n"}
    out = publish(agent, changed)
    assert out["status"] == "updated"
    md = (tmp_path / "site" / "capsule-wardrobe-basics.md").read_text()
    front = read_front_matter(md)
    assert front["date"] == "2023-11-14T22:13:20+00:00"
    assert front["updated"] == "2023-11-15T22:13:20+00:00"
    assert md.endswith("One more line.\n")
    # Publishing the same changed article again: nothing to do.
    clock.advance(60)
    assert publish(agent, changed)["status"] == "unchanged"


def test_an_update_keeps_the_file_mode(tmp_path: Path) -> None:
    agent = make(tmp_path)
    out = publish(agent)
    md = Path(out["files"]["markdown"])
    md.chmod(0o640)
    publish(agent, {**ARTICLE, "title": "Changed"})
    assert md.stat().st_mode & 0o777 == 0o640


def test_a_missing_html_file_is_restored(tmp_path: Path) -> None:
    agent = make(tmp_path)
    out = publish(agent)
    Path(out["files"]["html"]).unlink()
    assert publish(agent)["status"] == "updated"
    assert Path(out["files"]["html"]).exists()


def test_markdown_only_and_slug_from_title(tmp_path: Path) -> None:
    agent = make(tmp_path, {"formats": ["markdown"]})
    out = publish(agent, {**ARTICLE, "slug": ""})
    assert out["slug"] == "capsule-wardrobe-basics"
    assert list(out["files"]) == ["markdown"]
    assert not (tmp_path / "state" / "published" / "capsule-wardrobe-basics.html").exists()


def test_unsafe_slugs_are_refused(tmp_path: Path) -> None:
    agent = make(tmp_path)
    with pytest.raises(PermanentError) as err:
        publish(agent, {**ARTICLE, "slug": "../../etc/passwd"})
    assert str(err.value) == (
        "slug '../../etc/passwd' is not lowercase words joined by hyphens "
        "(at most 200 characters); refusing to publish"
    )
    with pytest.raises(PermanentError, match=r"at most 200 characters"):
        publish(agent, {**ARTICLE, "slug": "a" * 201})
    assert not (tmp_path / "state").exists()
    with pytest.raises(PermanentError, match=r"^publish: unknown input\(s\) content$"):
        asyncio.run(agent.execute_core_function(article=ARTICLE, content="x"))


def test_write_atomic_leaves_the_old_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "a.md"
    write_atomic(target, "old")

    def broken_replace(src: str, dst: str, **dir_fds: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.md"]


# -- webhook -----------------------------------------------------------------------


class Hook:
    """A local webhook: records POSTs and answers with queued (status, headers) pairs."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.replies: list[tuple[int, dict[str, str]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                hook.calls.append(
                    {
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "json": json.loads(self.rfile.read(length)),
                    }
                )
                status, headers = hook.replies.pop(0) if hook.replies else (201, {})
                body = b'{"ok": true}' if status < 400 else b"nope"
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/articles"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_webhook_post_carries_the_article_and_an_idempotency_key(
    tmp_path: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "tok-SECRET-123")
    agent = make(tmp_path, {"webhook_url": hook.url, "webhook_token_env": "HOOK_TOKEN"})
    out = publish(agent)
    assert out["status"] == "created"
    assert out["attempts"] == 1
    assert out["status_code"] == 201
    (call,) = hook.calls
    assert call["headers"]["authorization"] == "Bearer tok-SECRET-123"
    assert call["headers"]["idempotency-key"] == f"capsule-wardrobe-basics-{out['sha256'][:16]}"
    payload = call["json"]
    assert payload["slug"] == "capsule-wardrobe-basics"
    assert payload["markdown"] == ARTICLE["body"]
    assert "<h1>Capsule Wardrobe Basics</h1>" in payload["html"]
    assert "tok-SECRET-123" not in json.dumps(out)
    # Same content again: not sent.
    assert publish(agent)["status"] == "unchanged"
    assert len(hook.calls) == 1
    # Changed content: sent, reported as an update.
    assert (
        publish(agent, {**ARTICLE, "title": "Capsule Wardrobe Basics, Revised"})["status"]
        == "updated"
    )
    assert len(hook.calls) == 2
    assert not (tmp_path / "state" / "published" / "capsule-wardrobe-basics.md").exists()


def test_webhook_retries_server_errors_with_backoff_and_retry_after(
    tmp_path: Path, hook: Hook
) -> None:
    clock = FakeClock(START)
    hook.replies += [(503, {}), (429, {"Retry-After": "7"}), (200, {})]
    agent = make(
        tmp_path,
        {"webhookUrl": hook.url, "webhookMaxAttempts": 4, "webhookBackoffSeconds": 0.5},
        clock,
    )
    out = publish(agent)
    assert out["attempts"] == 3
    assert out["status_code"] == 200
    assert clock.sleeps == [0.5, 7.0]
    assert len(hook.calls) == 3


def test_webhook_gives_up_after_the_configured_attempts(tmp_path: Path, hook: Hook) -> None:
    clock = FakeClock(START)
    hook.replies += [(500, {})] * 3
    agent = make(tmp_path, {"webhook_url": hook.url, "webhook_max_attempts": 3}, clock)
    with pytest.raises(TemporaryError) as err:
        publish(agent)
    assert str(err.value) == f"webhook {hook.url} failed after 3 attempt(s): HTTP 500: nope"
    assert clock.sleeps == [1.0, 2.0]
    # Nothing was recorded, so the next run sends again.
    assert publish(agent)["status"] == "created"


def test_webhook_client_errors_are_not_retried(tmp_path: Path, hook: Hook) -> None:
    clock = FakeClock(START)
    hook.replies.append((422, {}))
    agent = make(tmp_path, {"webhook_url": hook.url}, clock)
    with pytest.raises(PermanentError) as err:
        publish(agent)
    assert str(err.value) == f"webhook {hook.url} refused the article: HTTP 422: nope"
    assert clock.sleeps == []
    assert len(hook.calls) == 1


def test_webhook_unreachable_is_retried_then_temporary(tmp_path: Path) -> None:
    clock = FakeClock(START)
    closed = Hook()
    closed.server.server_close()  # nothing listens on that port any more
    agent = make(tmp_path, {"webhook_url": closed.url, "webhook_max_attempts": 2}, clock)
    with pytest.raises(TemporaryError, match=r"failed after 2 attempt\(s\): ConnectError"):
        publish(agent)
    assert clock.sleeps == [1.0]


def test_webhook_token_env_must_be_set(tmp_path: Path, hook: Hook) -> None:
    agent = make(tmp_path, {"webhook_url": hook.url, "webhook_token_env": "NOT_SET_TOKEN"})
    with pytest.raises(PermanentError, match=r"^webhookTokenEnv names NOT_SET_TOKEN, which is not"):
        publish(agent)
    assert hook.calls == []


def test_front_matter_reader_tolerates_garbage() -> None:
    assert read_front_matter("no front matter") == {}
    assert read_front_matter("---\n: [unclosed\n---\n") == {}
    assert read_front_matter("---\n- a list\n---\n") == {}
    assert read_front_matter("---\ntitle: x\n") == {}
    assert yaml.safe_load("a: 1") == {"a": 1}
