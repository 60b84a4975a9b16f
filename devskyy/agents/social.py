"""The social media agent (capability ``social_posts``): one post per platform, within limits.

Each platform has its own rules (``PLATFORMS``): the character limit, how a link is
counted (X and Mastodon count every URL as 23 characters; X also weighs most non-Latin
characters and emoji double, as twitter-text does), how many hashtags fit or are wise,
and whether a link in the text works at all (Instagram captions: it does not, so the post
says "link in bio"). A post starts with everything (title, summary, key points, link,
hashtags) and gives up parts in a fixed order until it fits: key points, then summary
words, then hashtags, then title words. What was given up is reported.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from devskyy.agents._content_text import (
    Article,
    first_paragraph,
    fit_sentences,
    headings,
    parse_article,
    truncate_words,
)
from devskyy.core.tasks import Consumes
from devskyy.errors import PermanentError
from devskyy.runtime.agent import AgentStatus, BaseAgent

_GENERIC = frozenset({"key takeaways", "next steps", "further reading", "conclusion", "summary"})
_URL = re.compile(r"https?://\S+")
# twitter-text v3: code points in these ranges weigh 1, every other one weighs 2.
_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


@dataclass(frozen=True)
class Platform:
    """A platform's posting rules."""

    name: str
    limit: int
    max_hashtags: int
    url_length: int | None = None  # every URL counts as this many characters
    weighted: bool = False  # twitter-text weighting of non-Latin characters and emoji
    links_clickable: bool = True
    key_points: bool = False  # room for a short list of the article's sections


PLATFORMS: dict[str, Platform] = {
    # Hashtag counts are hard limits where the platform has one (Instagram 30, Threads 1)
    # and the platforms' own advice elsewhere (X 1-2, LinkedIn 3-5, Facebook a few).
    "x": Platform("x", 280, 2, url_length=23, weighted=True),
    "linkedin": Platform("linkedin", 3000, 5, key_points=True),
    "facebook": Platform("facebook", 63206, 3, key_points=True),
    "instagram": Platform("instagram", 2200, 30, links_clickable=False, key_points=True),
    "threads": Platform("threads", 500, 1),
    "mastodon": Platform("mastodon", 500, 4, url_length=23),
}
ALIASES = {"twitter": "x", "fb": "facebook", "ig": "instagram"}


def platform(name: str) -> Platform:
    """The rules for a platform name or alias; ``PermanentError`` when unknown."""
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in PLATFORMS:
        known = ", ".join(sorted([*PLATFORMS, *ALIASES]))
        raise PermanentError(f"unknown social platform {name!r}; known: {known}")
    return PLATFORMS[key]


def _weight(char: str) -> int:
    code = ord(char)
    return 1 if any(lo <= code <= hi for lo, hi in _LIGHT_RANGES) else 2


def post_length(text: str, rules: Platform) -> int:
    """The length the platform counts: URLs at their fixed length, weighted characters."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    position = 0
    for match in _URL.finditer(text) if rules.url_length else ():
        total += _count(text[position : match.start()], rules) + (rules.url_length or 0)
        position = match.end()
    return total + _count(text[position:], rules)


def _count(text: str, rules: Platform) -> int:
    return sum(_weight(c) for c in text) if rules.weighted else len(text)


def hashtag(keyword: str) -> str:
    """``capsule wardrobe`` → ``#CapsuleWardrobe`` (letters and digits only)."""
    parts = re.findall(r"[^\W_]+", keyword)  # a hyphen or apostrophe would end the tag
    return "#" + "".join(p[:1].upper() + p[1:] for p in parts) if parts else ""


def with_utm(url: str, platform_name: str, campaign: str | None) -> str:
    """The URL with ``utm_source/medium/campaign`` added when a campaign is configured."""
    if not campaign:
        return url
    parts = urlsplit(url)
    extra = urlencode(
        {"utm_source": platform_name, "utm_medium": "social", "utm_campaign": campaign}
    )
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@dataclass
class _Draft:
    title: str
    summary: str
    points: list[str]
    link: str
    tags: list[str]

    def text(self) -> str:
        blocks = [self.title]
        if self.summary:
            blocks.append(self.summary)
        if self.points:
            blocks.append("\n".join(f"- {p}" for p in self.points))
        if self.link:
            blocks.append(self.link)
        if self.tags:
            blocks.append(" ".join(self.tags))
        return "\n\n".join(b for b in blocks if b)


def compose(article: Article, rules: Platform, url: str | None) -> dict[str, Any]:
    """One post for one platform, reduced until it fits; reports what was given up."""
    summary = first_paragraph(article.body) or article.meta_description
    summary = fit_sentences(summary, 400, 100)
    points = [t for level, t in headings(article.body) if level == 2 and t.lower() not in _GENERIC][
        :5
    ]
    if not rules.key_points:
        points = []
    if url and rules.links_clickable:
        link = url
    elif url:
        link = "Link in bio."
    else:
        link = ""
    tags = list(dict.fromkeys(t for t in (hashtag(k) for k in article.keywords) if t))
    draft = _Draft(article.title, summary, points, link, tags[: rules.max_hashtags])
    given_up: list[str] = []

    def fits() -> bool:
        return post_length(draft.text(), rules) <= rules.limit

    if not fits() and draft.points:
        draft.points = []
        given_up.append("key points")
    if not fits() and draft.summary:
        full = draft.summary
        over = post_length(draft.text(), rules) - rules.limit
        room = len(full) - over
        draft.summary = fit_sentences(full, room, room // 2) if room >= 20 else ""
        while draft.summary and not fits():  # weighted characters can need a second cut
            room -= max(1, post_length(draft.text(), rules) - rules.limit)
            draft.summary = fit_sentences(full, room, room // 2) if room >= 20 else ""
        given_up.append("summary (shortened)" if draft.summary else "summary")
    while not fits() and draft.tags:
        draft.tags.pop()
        if "hashtags" not in given_up:
            given_up.append("hashtags")
    if not fits() and draft.link and post_length(draft.link, rules) > rules.limit // 2:
        draft.link = ""  # a link that long leaves no room for the post itself
        given_up.append("link")
    if not fits():
        full_title = draft.title
        room = len(full_title) - (post_length(draft.text(), rules) - rules.limit)
        draft.title = truncate_words(full_title, max(room, 1))
        while not fits() and room > 1:
            room -= 1
            draft.title = truncate_words(full_title, room)
        given_up.append("title (shortened)")
    text = draft.text()
    return {
        "platform": rules.name,
        "text": text,
        "length": post_length(text, rules),
        "limit": rules.limit,
        "hashtags": draft.tags,
        "link": url if url and rules.links_clickable else None,
        "given_up": given_up,
    }


class SocialConfig(BaseModel):
    """``spec.config`` of the social media agent."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    platforms: list[str] = Field(default_factory=lambda: ["x", "linkedin", "facebook"])
    base_url: str | None = Field(default=None, description="site root; link = base/slug/")
    utm_campaign: str | None = None

    @field_validator("platforms")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        try:
            return [platform(p).name for p in value]
        except PermanentError as exc:
            raise ValueError(str(exc)) from None


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")

    article: dict[str, Any]
    platforms: list[str] | None = None
    url: str | None = None


class SocialMediaAgent(BaseAgent):
    """Writes a post per platform from an article, each within that platform's limits."""

    config_model: ClassVar[type[BaseModel] | None] = SocialConfig
    input_model: ClassVar[type[BaseModel] | None] = _Input
    # execute_task hands it the article of the content generator it depends on.
    consumes = (Consumes("article", "generate_content", "article"),)
    config: SocialConfig

    def __init__(self) -> None:
        super().__init__(agent_name="Social Media Agent", version="2.0.0")
        self.config = SocialConfig()

    async def initialize(self) -> bool:
        self.status = AgentStatus.HEALTHY
        return True

    def headline(self, result: dict[str, Any]) -> str | None:
        platforms = [str(p.get("platform")) for p in result.get("posts", [])]
        return f"{len(platforms)} posts: {', '.join(platforms)}"

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        try:
            given = _Input.model_validate(kwargs)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            raise PermanentError(f"social_posts: invalid input: {problems}") from None
        article = parse_article(given.article)
        names = given.platforms if given.platforms is not None else self.config.platforms
        rules = list({r.name: r for r in (platform(n) for n in names)}.values())
        url = given.url
        if not url and self.config.base_url and article.slug:
            url = f"{self.config.base_url.rstrip('/')}/{article.slug}/"
        posts = [
            compose(article, r, with_utm(url, r.name, self.config.utm_campaign) if url else None)
            for r in rules
        ]
        return {"slug": article.slug, "url": url, "posts": posts}
