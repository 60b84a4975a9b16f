"""``content_pipeline`` end to end: the shipped manifests applied to a fresh store and run by
the workflow engine with the offline generator, a temporary output folder and a local
aiosmtpd server; then ``devskyy run content_pipeline`` with no ``-p`` at all."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from click.testing import CliRunner

from devskyy.adapters.clock import FakeClock
from devskyy.cli import main
from devskyy.model.runs import RunRecord
from devskyy.runtime.system import open_system
from devskyy.runtime.workflows import to_guide_shape

ROOT = Path(__file__).resolve().parents[1]
START = 1_700_000_000.0


class Inbox:
    def __init__(self) -> None:
        self.received: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def set_config(tree: Path, agent: str, **config: Any) -> None:
    """Change an agent manifest's ``spec.config`` in the copied tree."""
    path = tree / "agents" / f"{agent}.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["spec"]["config"] = {**doc["spec"].get("config", {}), **config}
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh folder with a copy of the shipped manifests, as after ``git clone``."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    return tmp_path


def apply(project: Path) -> None:
    result = cli("apply", str(project / "manifests"))
    assert result.exit_code == 0, result.output


def run(params: dict[str, Any], clock: FakeClock | None = None) -> RunRecord:
    async def go() -> RunRecord:
        async with await open_system(clock=clock) as system:
            assert system.workflows is not None
            return await system.workflows.run("content_pipeline", params)

    return asyncio.run(go())


def statuses(record: RunRecord) -> dict[str, str]:
    return {s.name: s.status.value for s in record.steps}


def test_the_engine_runs_every_step_into_a_temp_folder_and_mails_the_article(
    project: Path, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    site = project / "site"
    manifests = project / "manifests"
    set_config(manifests, "publisher", output_dir=str(site), base_url="https://blog.example.com")
    set_config(manifests, "social_media", base_url="https://blog.example.com")
    set_config(
        manifests,
        "email",
        smtp_host="127.0.0.1",
        smtp_port=port,
        security="none",
        from_address="news@example.com",
        to=["ada@example.com"],
        base_url="https://blog.example.com",
    )
    apply(project)
    params = {
        "topic": "Sustainable fashion for busy people",
        "keywords": ["capsule wardrobe", "secondhand clothes"],
        "audience": "busy professionals",
        "tone": "friendly",
    }
    record = run(params, FakeClock(START))
    shape = to_guide_shape(record)
    assert (shape["status"], shape["errors"]) == ("completed", [])
    assert statuses(record) == {
        "generate": "succeeded",
        "seo": "succeeded",
        "publish": "succeeded",
        "social": "succeeded",
        "email": "succeeded",
    }
    generated = shape["generate"]
    assert generated["generator"] == "offline-template"
    assert generated["article"]["title"] == "Capsule Wardrobe: A Practical Guide"

    seo = shape["seo"]
    assert seo["keyword"] == "capsule wardrobe"
    assert seo["score"] >= seo["score_before"]
    assert [s["name"] for s in seo["subscores"]] == [
        "title",
        "meta_description",
        "slug",
        "headings",
        "keyword_placement",
        "keyword_density",
        "content_length",
        "readability",
        "links",
    ]
    article = seo["article"]
    slug = article["slug"]
    assert slug == "capsule-wardrobe-practical-guide"

    published = shape["publish"]
    assert published["status"] == "created"
    assert published["url"] == f"https://blog.example.com/{slug}/"
    md = (site / f"{slug}.md").read_text(encoding="utf-8")
    assert md.startswith("---\ntitle: 'Capsule Wardrobe: A Practical Guide'\n")
    assert "date: '2023-11-14T22:13:20+00:00'" in md
    assert md.endswith(article["body"])
    assert "<h1>Capsule Wardrobe: A Practical Guide</h1>" in (site / f"{slug}.html").read_text()

    posts = {p["platform"]: p for p in shape["social"]["posts"]}
    assert list(posts) == ["x", "linkedin", "facebook"]
    assert all(p["length"] <= p["limit"] for p in posts.values())
    assert f"https://blog.example.com/{slug}/" in posts["x"]["text"]

    assert shape["email"]["status"] == "sent"
    (envelope,) = inbox.received
    assert envelope.rcpt_tos == ["ada@example.com"]
    assert isinstance(envelope.content, bytes)
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"] == "Capsule Wardrobe: A Practical Guide"
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    assert f"Read the full article: https://blog.example.com/{slug}/" in text.get_content()

    # The same brief again: the article is unchanged, so nothing is rewritten.
    before = (site / f"{slug}.md").stat().st_mtime_ns
    again = run(params, FakeClock(START + 3600))
    assert to_guide_shape(again)["publish"]["status"] == "unchanged"
    assert (site / f"{slug}.md").stat().st_mtime_ns == before


def test_the_optional_branches_are_skipped_when_turned_off(project: Path) -> None:
    apply(project)
    record = run({"social": False, "email": False})
    assert statuses(record) == {
        "generate": "succeeded",
        "seo": "succeeded",
        "publish": "succeeded",
        "social": "skipped",
        "email": "skipped",
    }
    assert to_guide_shape(record)["status"] == "completed"
    # Default output folder: next to the state, under .devskyy/published.
    files = sorted(p.name for p in (project / ".devskyy" / "published").iterdir())
    assert files == ["gitops-practical-guide.html", "gitops-practical-guide.md"]


def test_a_failing_branch_does_not_stop_publishing(project: Path) -> None:
    apply(project)
    record = run({"platforms": ["myspace"]})
    assert statuses(record) == {
        "generate": "succeeded",
        "seo": "succeeded",
        "publish": "succeeded",
        "social": "failed",
        "email": "succeeded",
    }
    social = next(s for s in record.steps if s.name == "social")
    assert social.attempts == 1  # a PermanentError is not retried
    assert social.error is not None
    assert "unknown social platform 'myspace'" in social.error
    shape = to_guide_shape(record)
    assert shape["status"] == "failed"
    assert shape["email"]["status"] == "not sent: SMTP not configured"


def test_devskyy_run_content_pipeline_needs_no_params(project: Path) -> None:
    apply(project)
    result = cli("run", "content_pipeline", "-o", "json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["status"] == "succeeded"
    assert {name: step["status"] for name, step in record["steps"].items()} == {
        "generate": "succeeded",
        "seo": "succeeded",
        "publish": "succeeded",
        "social": "succeeded",
        "email": "succeeded",
    }
    steps = record["steps"]
    assert steps["generate"]["output"]["generator"] == "offline-template"
    assert steps["generate"]["output"]["article"]["title"] == "GitOps: A Practical Guide"
    assert steps["publish"]["output"]["status"] == "created"
    assert steps["email"]["output"]["status"] == "not sent: SMTP not configured"
    published = project / ".devskyy" / "published" / "gitops-practical-guide.md"
    assert published.exists()
    second = json.loads(cli("run", "content_pipeline", "-o", "json").output)
    assert second["steps"]["publish"]["output"]["status"] == "unchanged"
