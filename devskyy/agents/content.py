"""The content generator (manifest ``claude_sonnet``, capability ``generate_content``).

With an API key in the environment (``ANTHROPIC_API_KEY`` by default) it asks Claude,
through Anthropic's official SDK, for a Markdown article that follows the brief, and
reports the token counts and their cost. Without a key (or with ``mode: offline``) it
writes the article from the Jinja2 template ``templates/article.md.j2`` and the brief
alone, and says so: ``"generator": "offline-template"``. The key is read at call time,
handed only to the SDK, and never logged, stored or returned; error texts are scrubbed.

The SDK's own retries are off (``max_retries: 0``): retry decisions belong to devskyy's
step runner, which sees ``TemporaryError`` (rate limit, overload, 5xx, network) or
``PermanentError`` (bad request, authentication, permission).
"""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from devskyy.agents._content_text import (
    Article,
    first_paragraph,
    fit_sentences,
    headings,
    keyword_list,
    plain_text,
    slugify,
    templates,
    title_case,
    words,
)
from devskyy.errors import PermanentError, TemporaryError
from devskyy.runtime.agent import AgentStatus, BaseAgent

OFFLINE = "offline-template"
API = "anthropic"
SYSTEM_PROMPT = (
    "You are an experienced editor and content writer. You write accurate, original, "
    "well-structured articles in Markdown that follow the brief exactly."
)


class _Camel(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class Price(_Camel):
    """US dollars per million tokens."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


# Anthropic's list prices for the model families we know; ``config.pricing`` overrides
# them (exact model name first, then the longest matching prefix). A model outside this
# table gets ``cost_usd: null`` and ``pricing.source: unknown`` rather than a guess.
DEFAULT_PRICING: dict[str, Price] = {
    "claude-sonnet-4": Price(input_per_mtok=3.0, output_per_mtok=15.0),
    "claude-haiku-4-5": Price(input_per_mtok=1.0, output_per_mtok=5.0),
    "claude-opus-4-5": Price(input_per_mtok=5.0, output_per_mtok=25.0),
    "claude-opus-4-1": Price(input_per_mtok=15.0, output_per_mtok=75.0),
    "claude-opus-4-0": Price(input_per_mtok=15.0, output_per_mtok=75.0),
}


class ContentConfig(_Camel):
    """``spec.config`` of the content generator (snake_case or camelCase keys)."""

    mode: Literal["auto", "api", "offline"] = "auto"
    model: str = Field(default="claude-sonnet-4-6", min_length=1)
    max_tokens: int = Field(default=2048, ge=1, le=64000)
    temperature: float | None = Field(default=None, ge=0, le=1)
    api_key_env: str = Field(default="ANTHROPIC_API_KEY", min_length=1)
    base_url: str | None = None
    request_timeout_seconds: float = Field(default=120.0, gt=0)
    pricing: dict[str, Price] = Field(default_factory=dict)
    meta_description_length: int = Field(default=155, ge=50, le=320)


class Link(_Camel):
    """A page the article should link to (internal or external)."""

    text: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2000)


class Brief(_Camel):
    """What the step asks for; unknown fields are refused so typos surface."""

    topic: str = Field(min_length=1, max_length=500)
    keywords: list[str] = Field(default_factory=list)
    audience: str = "general readers"
    tone: str = "informative"
    title: str = ""
    word_count: int = Field(default=700, ge=100, le=10000)
    call_to_action: str = ""
    instructions: str = Field(default="", max_length=4000)
    links: list[Link] = Field(default_factory=list)
    author: str = ""
    language: str = "en"

    @field_validator("keywords", mode="before")
    @classmethod
    def _split(cls, value: Any) -> list[str]:
        return keyword_list(value)


def price_for(model: str, overrides: dict[str, Price]) -> tuple[Price | None, str]:
    """The price of ``model`` and where it came from (``config``, ``default`` or ``unknown``)."""
    for table, source in ((overrides, "config"), (DEFAULT_PRICING, "default")):
        if model in table:
            return table[model], source
        prefixes = sorted((p for p in table if model.startswith(p)), key=len, reverse=True)
        if prefixes:
            return table[prefixes[0]], source
    return None, "unknown"


def cost_usd(usage: dict[str, int], price: Price) -> float:
    """Cost of one call; cache writes cost 1.25x and cache reads 0.1x the input price."""
    fresh = usage.get("input_tokens", 0)
    written = usage.get("cache_creation_input_tokens", 0)
    read = usage.get("cache_read_input_tokens", 0)
    input_cost = (fresh + 1.25 * written + 0.1 * read) * price.input_per_mtok
    return round((input_cost + usage.get("output_tokens", 0) * price.output_per_mtok) / 1e6, 6)


def article_from_markdown(markdown: str, brief: Brief, meta_length: int) -> Article:
    """Wrap generated Markdown as an Article: H1 title (added if missing), slug, meta."""
    text = markdown.strip()
    if text.startswith("```"):
        # Some replies wrap the whole article in a fence despite the instructions.
        lines = text.splitlines()
        text = "\n".join(lines[1:-1] if lines[-1].strip().startswith("```") else lines[1:])
    found = [h for level, h in headings(text) if level == 1]
    title = found[0] if found else (brief.title or title_case(brief.topic))
    if not found:
        text = f"# {title}\n\n{text}"
    title = " ".join(plain_text(title).split())
    return Article(
        title=title,
        slug=slugify(title),
        meta_description=fit_sentences(first_paragraph(text), meta_length, meta_length // 2),
        body=text.strip() + "\n",
        keywords=brief.keywords,
        topic=brief.topic,
        audience=brief.audience,
        tone=brief.tone,
        author=brief.author,
        language=brief.language,
    )


def _as_written(keyword: str, *sources: str) -> str:
    """The keyword with the casing the brief uses for it elsewhere ("gitops" → "GitOps")."""
    pattern = re.compile(r"\b" + re.escape(keyword) + r"\b", re.IGNORECASE)
    for text in sources:
        match = pattern.search(text)
        if match and match.group(0) != match.group(0).lower():
            return match.group(0)
    return keyword


def offline_article(brief: Brief, meta_length: int) -> Article:
    """The article written from the template and the brief, without a language model."""
    named = [_as_written(k, brief.title, brief.topic, brief.instructions) for k in brief.keywords]
    focus = named[0] if named else brief.topic
    title = brief.title or title_case(f"{focus}: a practical guide")
    section_keywords = named[:5] or [brief.topic]
    sections = [
        {"keyword": kw, "heading": title_case(f"Getting {kw} right" if i else f"Why {kw} matters")}
        for i, kw in enumerate(section_keywords)
    ]
    body = (
        templates()
        .get_template("article.md.j2")
        .render(
            title=title,
            focus=focus,
            topic=brief.topic,
            audience=brief.audience,
            tone=brief.tone.lower(),
            sections=sections,
            call_to_action=brief.call_to_action,
            links=brief.links,
        )
    )
    return article_from_markdown(body, brief.model_copy(update={"title": title}), meta_length)


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


class ContentGeneratorAgent(BaseAgent):
    """Writes an article from a brief: Claude when a key is set, else the offline template."""

    config_model: ClassVar[type[BaseModel] | None] = ContentConfig
    input_model: ClassVar[type[BaseModel] | None] = Brief
    config: ContentConfig

    def __init__(self) -> None:
        super().__init__(agent_name="Content Generator", version="2.0.0")
        self.config = ContentConfig()

    async def initialize(self) -> bool:
        # Fail early on a broken template install rather than on the first request.
        templates().get_template("article.md.j2")
        templates().get_template("prompt.txt.j2")
        self.status = AgentStatus.HEALTHY
        return True

    def _api_key(self) -> str:
        return os.environ.get(self.config.api_key_env, "").strip()

    def generator(self) -> str:
        """Which generator a call would use now: ``anthropic`` or ``offline-template``."""
        if self.config.mode == "offline":
            return OFFLINE
        if self.config.mode == "api" or self._api_key():
            return API
        return OFFLINE

    def headline(self, result: dict[str, Any]) -> str | None:
        title = result.get("article", {}).get("title", "")
        line = f"{result.get('generator')} article {title!r}, {result.get('word_count')} words"
        cost = result.get("cost_usd")
        return line if cost is None else f"{line}, ${cost:.4f}"

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        try:
            brief = Brief.model_validate(kwargs)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            raise PermanentError(f"invalid content brief: {problems}") from None
        if self.generator() == OFFLINE:
            article = offline_article(brief, self.config.meta_description_length)
            note = (
                "written from a template and the brief, without a language model; "
                f"set {self.config.api_key_env} to generate with Claude"
            )
            if not brief.language.lower().startswith("en"):
                note += f"; the template is in English, not {brief.language!r}"
            return {
                "generator": OFFLINE,
                "note": note,
                "article": article.model_dump(),
                "word_count": len(words(plain_text(article.body))),
                "usage": None,
                "cost_usd": None,
            }
        return await self._generate_with_api(brief)

    async def _generate_with_api(self, brief: Brief) -> dict[str, Any]:
        import anthropic  # noqa: PLC0415  (seconds to import; only the API path needs it)

        key = self._api_key()
        if not key:
            raise PermanentError(
                f"mode is 'api' but the environment variable {self.config.api_key_env} is not set"
            )
        prompt = (
            templates().get_template("prompt.txt.j2").render(brief=brief, keywords=brief.keywords)
        )
        # Sent as extra body: recent SDK releases dropped the sampling keyword arguments.
        extra: dict[str, Any] = {}
        if self.config.temperature is not None:
            extra["extra_body"] = {"temperature": self.config.temperature}
        try:
            async with anthropic.AsyncAnthropic(
                api_key=key,
                base_url=self.config.base_url,
                max_retries=0,
                timeout=self.config.request_timeout_seconds,
            ) as client:
                message = await client.messages.create(
                    model=self.config.model,
                    max_tokens=self.config.max_tokens,
                    system=SYSTEM_PROMPT,
                    messages=[{"role": "user", "content": prompt}],
                    **extra,
                )
        except anthropic.APIConnectionError as exc:
            raise TemporaryError(f"Anthropic API unreachable: {_scrub(str(exc), key)}") from None
        except anthropic.APIStatusError as exc:
            status = exc.status_code
            text = f"Anthropic API returned HTTP {status}: {_scrub(exc.message, key)}"
            if status in (408, 409, 429) or status >= 500:
                raise TemporaryError(text) from None
            raise PermanentError(text) from None
        markdown = "".join(b.text for b in message.content if b.type == "text")
        if not markdown.strip():
            raise TemporaryError(f"model {message.model} returned no text")
        article = article_from_markdown(markdown, brief, self.config.meta_description_length)
        raw_usage = message.usage
        usage = {"input_tokens": raw_usage.input_tokens, "output_tokens": raw_usage.output_tokens}
        for name in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            value = getattr(raw_usage, name, None)
            if value:
                usage[name] = value
        price, source = price_for(message.model or self.config.model, self.config.pricing)
        result: dict[str, Any] = {
            "generator": API,
            "model": message.model,
            "message_id": message.id,
            "stop_reason": message.stop_reason,
            "article": article.model_dump(),
            "word_count": len(words(plain_text(article.body))),
            "usage": usage,
            "cost_usd": cost_usd(usage, price) if price else None,
            "pricing": {**price.model_dump(), "source": source} if price else {"source": source},
        }
        if message.stop_reason == "max_tokens":
            result["warning"] = (
                f"the reply stopped at max_tokens ({self.config.max_tokens}); "
                "the article may be cut short"
            )
        return result
