"""The content generator: offline template without a key, Anthropic's SDK with one.

The SDK talks to a fake Messages API on 127.0.0.1 (``base_url``), never to the network.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devskyy.agents.content import (
    OFFLINE,
    ContentConfig,
    ContentGeneratorAgent,
    Price,
    cost_usd,
    price_for,
)
from devskyy.errors import PermanentError, TemporaryError
from devskyy.runtime.agent import AgentContext

KEY = "sk-ant-test-0123456789abcdef-SECRET"
ARTICLE_MD = """# Capsule Wardrobe Basics for Busy People

A capsule wardrobe saves time every morning. It also cuts waste.

## Why a Capsule Wardrobe Works

Fewer, better clothes.
"""


class FakeAnthropic:
    """A Messages API double: records requests, answers with queued (status, body) pairs."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: list[tuple[int, dict[str, Any]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                status, reply = fake.replies.pop(0) if fake.replies else (200, fake.message())
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @staticmethod
    def message(
        text: str = ARTICLE_MD,
        model: str = "claude-sonnet-4-6",
        input_tokens: int = 1200,
        output_tokens: int = 800,
        stop_reason: str = "end_turn",
    ) -> dict[str, Any]:
        return {
            "id": "msg_01Test",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }

    @staticmethod
    def error(kind: str, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": kind, "message": message}}


@pytest.fixture
def api() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def make_agent(config: dict[str, Any] | None = None) -> ContentGeneratorAgent:
    agent = ContentGeneratorAgent()
    agent.bind(AgentContext(name="claude_sonnet", config=config or {}))
    assert asyncio.run(agent.initialize()) is True
    return agent


BRIEF = {
    "topic": "sustainable fashion",
    "keywords": ["capsule wardrobe", "organic cotton"],
    "audience": "busy professionals",
    "tone": "friendly",
}


def test_without_a_key_the_offline_template_writes_a_labelled_article() -> None:
    agent = make_agent()
    assert agent.generator() == OFFLINE
    out = asyncio.run(agent.execute_core_function(**BRIEF))
    assert out["generator"] == "offline-template"
    assert out["note"].startswith("written from a template and the brief, without a language")
    assert out["usage"] is None
    assert out["cost_usd"] is None
    article = out["article"]
    assert article["title"] == "Capsule Wardrobe: A Practical Guide"
    assert article["slug"] == "capsule-wardrobe-practical-guide"
    assert article["keywords"] == ["capsule wardrobe", "organic cotton"]
    body = article["body"]
    assert body.startswith("# Capsule Wardrobe: A Practical Guide\n")
    assert "## Why Capsule Wardrobe Matters" in body
    assert "## Getting Organic Cotton Right" in body
    assert "busy professionals" in body
    assert "Let's talk about capsule wardrobe." in body  # the friendly tone
    assert 0 < len(article["meta_description"]) <= 155
    assert out["word_count"] > 250


def test_offline_output_depends_on_the_brief() -> None:
    agent = make_agent()
    formal = asyncio.run(
        agent.execute_core_function(
            topic="home energy",
            keywords="heat pumps",
            tone="professional",
            title="Heat Pumps Explained",
            call_to_action="Book a free home survey.",
            links=[{"text": "Our survey", "url": "/survey"}],
        )
    )["article"]
    assert formal["title"] == "Heat Pumps Explained"
    assert formal["body"].startswith("# Heat Pumps Explained\n")
    assert "This guide explains heat pumps for general readers." in formal["body"]
    assert "Book a free home survey." in formal["body"]
    assert "- [Our survey](/survey)" in formal["body"]
    german = asyncio.run(agent.execute_core_function(topic="Stadtgärten", language="de"))
    assert german["note"].endswith("; the template is in English, not 'de'")
    no_keywords = asyncio.run(agent.execute_core_function(topic="urban gardening"))["article"]
    assert no_keywords["title"] == "Urban Gardening: A Practical Guide"
    # A keyword keeps the casing the brief gives it elsewhere.
    cased = asyncio.run(
        agent.execute_core_function(topic="GitOps for small teams", keywords=["gitops"])
    )["article"]
    assert cased["title"] == "GitOps: A Practical Guide"
    assert "## Why GitOps Matters" in cased["body"]


def test_a_bad_brief_is_a_permanent_error_naming_every_field() -> None:
    agent = make_agent()
    with pytest.raises(PermanentError) as err:
        asyncio.run(agent.execute_core_function(topic="", word_count=5, colour="red"))
    assert str(err.value) == (
        "invalid content brief: topic: String should have at least 1 character; "
        "word_count: Input should be greater than or equal to 100; "
        "colour: Extra inputs are not permitted"
    )


def test_mode_offline_wins_over_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    assert make_agent({"mode": "offline"}).generator() == OFFLINE
    assert make_agent().generator() == "anthropic"


def test_mode_api_without_a_key_fails_permanently() -> None:
    agent = make_agent({"mode": "api", "api_key_env": "MY_KEY"})
    with pytest.raises(PermanentError, match=r"^mode is 'api' but the environment variable MY_KEY"):
        asyncio.run(agent.execute_core_function(**BRIEF))


def test_with_a_key_the_sdk_is_called_and_tokens_and_cost_are_reported(
    api: FakeAnthropic, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    agent = make_agent(
        {"model": "claude-sonnet-4-6", "maxTokens": 1500, "base_url": api.url, "temperature": 0.3}
    )
    out = asyncio.run(agent.execute_core_function(**BRIEF))

    (request,) = api.requests
    assert request["path"] == "/v1/messages"
    headers = request["headers"]
    # SDK releases differ: x-api-key, or the key as a bearer token.
    sent = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
    assert sent == KEY
    body = request["body"]
    assert body["model"] == "claude-sonnet-4-6"
    assert body["max_tokens"] == 1500
    assert body["temperature"] == 0.3
    assert body["system"].startswith("You are an experienced editor")
    prompt = body["messages"][0]["content"]
    assert body["messages"][0]["role"] == "user"
    assert "Topic: sustainable fashion" in prompt
    assert "Audience: busy professionals" in prompt
    assert "Keywords (use the first one" in prompt
    assert "capsule wardrobe, organic cotton" in prompt

    assert out["generator"] == "anthropic"
    assert out["model"] == "claude-sonnet-4-6"
    assert out["usage"] == {"input_tokens": 1200, "output_tokens": 800}
    # $3 and $15 per million tokens: 1200*3/1e6 + 800*15/1e6
    assert out["cost_usd"] == pytest.approx(0.0156)
    assert out["pricing"] == {"input_per_mtok": 3.0, "output_per_mtok": 15.0, "source": "default"}
    article = out["article"]
    assert article["title"] == "Capsule Wardrobe Basics for Busy People"
    assert article["slug"] == "capsule-wardrobe-basics-busy-people"
    assert article["meta_description"] == (
        "A capsule wardrobe saves time every morning. It also cuts waste."
    )
    assert article["body"] == ARTICLE_MD
    assert "warning" not in out
    assert KEY not in json.dumps(out)
    assert KEY not in caplog.text


def test_config_pricing_overrides_and_truncation_is_flagged(
    api: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    api.replies.append(
        (
            200,
            api.message(text="Just text, no heading.", model="my-model", stop_reason="max_tokens"),
        )
    )
    agent = make_agent(
        {
            "model": "my-model",
            "base_url": api.url,
            "pricing": {"my-model": {"input_per_mtok": 2, "output_per_mtok": 10}},
            "max_tokens": 64,
        }
    )
    out = asyncio.run(agent.execute_core_function(**BRIEF))
    assert out["cost_usd"] == pytest.approx((1200 * 2 + 800 * 10) / 1e6)
    assert out["pricing"]["source"] == "config"
    assert out["warning"] == ("the reply stopped at max_tokens (64); the article may be cut short")
    # No H1 in the reply: the topic becomes the title and the H1.
    assert out["article"]["body"] == "# Sustainable Fashion\n\nJust text, no heading.\n"


def test_a_reply_wrapped_in_a_code_fence_is_unwrapped(
    api: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    api.replies.append((200, api.message(text=f"```markdown\n{ARTICLE_MD}```\n")))
    brief = {**BRIEF, "links": [{"text": "Our shop", "url": "https://shop.example/"}]}
    out = asyncio.run(make_agent({"base_url": api.url}).execute_core_function(**brief))
    assert out["article"]["body"] == ARTICLE_MD
    prompt = api.requests[0]["body"]["messages"][0]["content"]
    assert "- Our shop: https://shop.example/" in prompt


def test_unknown_model_price_is_reported_as_unknown(
    api: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    api.replies.append((200, api.message(model="other-model")))
    out = asyncio.run(
        make_agent({"model": "other-model", "base_url": api.url}).execute_core_function(**BRIEF)
    )
    assert out["cost_usd"] is None
    assert out["pricing"] == {"source": "unknown"}
    assert out["usage"]["output_tokens"] == 800


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (429, "rate_limit_error", TemporaryError),
        (529, "overloaded_error", TemporaryError),
        (500, "api_error", TemporaryError),
        (400, "invalid_request_error", PermanentError),
        (401, "authentication_error", PermanentError),
    ],
)
def test_api_errors_are_classified_and_never_show_the_key(
    api: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    kind: str,
    error: type[Exception],
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    api.replies.append((status, api.error(kind, f"bad key {KEY}")))
    agent = make_agent({"base_url": api.url})
    with pytest.raises(error) as err:
        asyncio.run(agent.execute_core_function(**BRIEF))
    assert str(err.value).startswith(f"Anthropic API returned HTTP {status}: ")
    assert KEY not in str(err.value)
    assert "***" in str(err.value)
    assert len(api.requests) == 1  # the SDK's own retries are off: devskyy decides


def test_unreachable_api_is_temporary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    fake = FakeAnthropic()  # bound, never started: connections are refused or hang
    fake.server.server_close()
    agent = make_agent({"base_url": fake.url, "request_timeout_seconds": 5})
    with pytest.raises(TemporaryError, match=r"^Anthropic API unreachable: "):
        asyncio.run(agent.execute_core_function(**BRIEF))


def test_price_lookup_and_cost_arithmetic() -> None:
    assert price_for("claude-haiku-4-5-20251001", {}) == (
        Price(input_per_mtok=1, output_per_mtok=5),
        "default",
    )
    assert price_for("claude-opus-4-5", {})[0] == Price(input_per_mtok=5, output_per_mtok=25)
    override = {"claude-sonnet-4-6": Price(input_per_mtok=1, output_per_mtok=2)}
    assert price_for("claude-sonnet-4-6-20260101", override) == (
        override["claude-sonnet-4-6"],
        "config",
    )
    assert price_for("claude-sonnet-4-6", {})[1] == "default"
    assert price_for("claude-sonnet-9", {}) == (None, "unknown")
    usage = {
        "input_tokens": 1_000_000,
        "output_tokens": 1_000_000,
        "cache_creation_input_tokens": 1_000_000,
        "cache_read_input_tokens": 1_000_000,
    }
    assert cost_usd(usage, Price(input_per_mtok=3, output_per_mtok=15)) == pytest.approx(
        3 + 15 + 3.75 + 0.3
    )


def test_config_is_validated_with_both_spellings() -> None:
    assert ContentConfig.model_validate({"maxTokens": 10}).max_tokens == 10
    assert ContentConfig.model_validate({"max_tokens": 10}).max_tokens == 10
    with pytest.raises(ValueError, match="mode"):
        ContentConfig.model_validate({"mode": "magic"})
