"""The SEO agent (capability ``seo_optimize``): scores an article and fixes what is safe.

``analyze`` measures the article against rules that search engines and the usual SEO
tools share: title and meta-description length, a clean slug, one H1 and no skipped
heading levels, where the focus keyword appears and how dense it is, Flesch readability,
length, and internal/external links. Each rule yields a sub-score 0-100 with the
measurement and a sentence that explains it; the score is their weighted mean.

``optimize`` changes only what cannot alter the meaning: it rebuilds a bad slug, writes or
trims the meta description from the article's own first paragraph, adds a missing H1,
demotes extra H1s, closes skipped heading levels, puts the keyword in front of the title
when it fits, and drops a subtitle from a title that is too long. Prose is never rewritten;
what is left is reported as suggestions. Both are pure functions; the agent wraps them.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from devskyy.agents._content_text import (
    Article,
    contains_keyword,
    first_paragraph,
    headings,
    is_internal,
    keyword_list,
    keyword_occurrences,
    links,
    parse_article,
    plain_text,
    readability,
    slugify,
    title_case,
    truncate_words,
    words,
)
from devskyy.core.tasks import Consumes
from devskyy.errors import PermanentError
from devskyy.runtime.agent import AgentStatus, BaseAgent


class SeoConfig(BaseModel):
    """``spec.config`` of the SEO agent: the thresholds the rules use."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    title_min_length: int = Field(default=30, ge=1)
    title_max_length: int = Field(default=60, ge=10)
    meta_min_length: int = Field(default=120, ge=1)
    meta_max_length: int = Field(default=160, ge=50)
    slug_max_length: int = Field(default=60, ge=10)
    min_words: int = Field(default=300, ge=1)
    density_min_percent: float = Field(default=0.5, ge=0)
    density_max_percent: float = Field(default=2.5, gt=0)
    readability_target: float = Field(default=60.0, description="Flesch reading ease")
    site_hosts: list[str] = Field(default_factory=list)
    min_internal_links: int = Field(default=1, ge=0)
    min_external_links: int = Field(default=1, ge=0)
    optimize: bool = True


WEIGHTS = {
    "title": 10,
    "meta_description": 10,
    "slug": 10,
    "headings": 15,
    "keyword_placement": 15,
    "keyword_density": 10,
    "content_length": 10,
    "readability": 10,
    "links": 10,
}


@dataclass(frozen=True)
class SubScore:
    """One rule's verdict."""

    name: str
    score: float
    explanation: str
    value: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "good" if self.score >= 80 else "improve" if self.score >= 50 else "poor"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score": round(self.score, 1),
            "weight": WEIGHTS[self.name],
            "status": self.status,
            "explanation": self.explanation,
            "value": self.value,
        }


def _range_score(value: float, low: float, high: float) -> float:
    """100 inside [low, high], falling linearly to 0 at 0 below and at 2*high above."""
    if low <= value <= high:
        return 100.0
    if value < low:
        return max(0.0, 100.0 * value / low) if low else 0.0
    return max(0.0, 100.0 * (1 - (value - high) / high))


def _title(a: Article, c: SeoConfig) -> SubScore:
    n = len(a.title)
    score = _range_score(n, c.title_min_length, c.title_max_length)
    where = "within" if score == 100 else "outside"
    return SubScore(
        "title",
        score,
        f"title is {n} characters, {where} {c.title_min_length}-{c.title_max_length}; "
        "search results cut longer titles",
        {"length": n},
    )


def _meta(a: Article, c: SeoConfig) -> SubScore:
    n = len(a.meta_description)
    if not n:
        return SubScore("meta_description", 0, "no meta description", {"length": 0})
    score = _range_score(n, c.meta_min_length, c.meta_max_length)
    has_kw = bool(a.focus_keyword) and contains_keyword(a.meta_description, a.focus_keyword)
    if a.focus_keyword and not has_kw:
        score *= 0.8
    return SubScore(
        "meta_description",
        score,
        f"meta description is {n} characters (aim for {c.meta_min_length}-{c.meta_max_length})"
        + ("" if has_kw or not a.focus_keyword else "; it lacks the focus keyword"),
        {"length": n, "has_keyword": has_kw},
    )


def _slug(a: Article, c: SeoConfig) -> SubScore:
    problems: list[str] = []
    if not a.slug:
        return SubScore("slug", 0, "no slug", {"slug": ""})
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", a.slug):
        problems.append("not lowercase words joined by single hyphens")
    if len(a.slug) > c.slug_max_length:
        problems.append(f"longer than {c.slug_max_length} characters")
    parts = a.slug.split("-")
    kw_parts = slugify(a.focus_keyword, drop_stopwords=False).split("-") if a.focus_keyword else []
    if kw_parts and not all(p in parts for p in kw_parts):
        problems.append("missing the focus keyword")
    score = max(0.0, 100.0 - 34.0 * len(problems))
    text = "slug is clean and short" if not problems else "slug is " + "; ".join(problems)
    return SubScore("slug", score, text, {"slug": a.slug, "length": len(a.slug)})


def _headings(a: Article) -> SubScore:
    found = headings(a.body)
    levels = [level for level, _ in found]
    h1 = levels.count(1)
    h2 = levels.count(2)
    skipped = [f"H{p}→H{n}" for p, n in itertools.pairwise(levels) if n > p + 1]
    problems: list[str] = []
    score = 100.0
    if h1 != 1:
        problems.append(f"{h1} H1 headings (want exactly one)")
        score -= 40
    elif levels[0] != 1:
        problems.append("the H1 is not the first heading")
        score -= 15
    if h2 < 2:
        problems.append(f"{h2} H2 subheadings (want at least 2)")
        score -= 30 if h2 == 0 else 15
    if skipped:
        problems.append("skipped levels " + ", ".join(skipped))
        score -= 15
    text = "one H1, sections under H2, no skipped levels" if not problems else "; ".join(problems)
    return SubScore("headings", max(0.0, score), text, {"h1": h1, "h2": h2, "skipped": skipped})


def _placement(a: Article) -> SubScore:
    kw = a.focus_keyword
    if not kw:
        return SubScore("keyword_placement", 0, "no focus keyword given", {})
    h1 = [t for level, t in headings(a.body) if level == 1]
    subs = [t for level, t in headings(a.body) if level in (2, 3)]
    places = {
        "title": contains_keyword(a.title, kw),
        "h1": any(contains_keyword(t, kw) for t in h1),
        "first_paragraph": contains_keyword(first_paragraph(a.body), kw),
        "subheading": any(contains_keyword(t, kw) for t in subs),
        "meta_description": contains_keyword(a.meta_description, kw),
    }
    hits = [k for k, v in places.items() if v]
    missing = [k for k, v in places.items() if not v]
    text = f"'{kw}' appears in {len(hits)} of {len(places)} key places"
    if missing:
        text += "; missing from " + ", ".join(m.replace("_", " ") for m in missing)
    return SubScore("keyword_placement", 100.0 * len(hits) / len(places), text, places)


def _density(a: Article, c: SeoConfig, text: str) -> SubScore:
    kw = a.focus_keyword
    total = len(words(text))
    if not kw or not total:
        return SubScore("keyword_density", 0, "no focus keyword or no text", {})
    count = keyword_occurrences(text, kw)
    density = 100.0 * count / total
    per_keyword = {k: keyword_occurrences(text, k) for k in a.keywords}
    low, high = c.density_min_percent, c.density_max_percent
    score = _range_score(density, low, high)
    verdict = "within" if score == 100 else "below" if density < low else "above (stuffing)"
    return SubScore(
        "keyword_density",
        score,
        f"'{kw}' occurs {count} times in {total} words ({density:.2f}%), "
        f"{verdict} the {low}-{high}% range",
        {"count": count, "words": total, "percent": round(density, 2), "keywords": per_keyword},
    )


def _length(c: SeoConfig, text: str) -> SubScore:
    n = len(words(text))
    score = min(100.0, 100.0 * n / c.min_words)
    enough = "enough" if n >= c.min_words else "thin"
    return SubScore(
        "content_length", score, f"{n} words ({enough}; aim for {c.min_words}+)", {"words": n}
    )


def _readability(c: SeoConfig, text: str, language: str) -> SubScore:
    r = readability(text, language)
    ease, target = r.flesch_reading_ease, c.readability_target
    score = 100.0 if ease >= target else max(0.0, 100.0 - 2.5 * (target - ease))
    return SubScore(
        "readability",
        score,
        f"Flesch reading ease {ease} (target {target}+), grade level {r.flesch_kincaid_grade}",
        r.as_dict(),
    )


def _links(a: Article, c: SeoConfig) -> SubScore:
    targets = links(a.body)
    internal = sum(1 for t in targets if is_internal(t, c.site_hosts))
    external = len(targets) - internal
    parts = [
        100.0 if want == 0 else min(100.0, 100.0 * have / want)
        for have, want in ((internal, c.min_internal_links), (external, c.min_external_links))
    ]
    return SubScore(
        "links",
        sum(parts) / 2,
        f"{internal} internal and {external} external links "
        f"(want {c.min_internal_links}+ and {c.min_external_links}+)",
        {"internal": internal, "external": external},
    )


def analyze(article: Article, config: SeoConfig) -> tuple[float, list[SubScore]]:
    """The weighted score (0-100) and every sub-score of ``article``."""
    text = plain_text(article.body)
    subs = [
        _title(article, config),
        _meta(article, config),
        _slug(article, config),
        _headings(article),
        _placement(article),
        _density(article, config, text),
        _length(config, text),
        _readability(config, text, article.language),
        _links(article, config),
    ]
    total = sum(WEIGHTS[s.name] * s.score for s in subs) / sum(WEIGHTS.values())
    return round(total, 1), subs


_HEADING_LINE = re.compile(r"^(#{1,6})([ \t]+.+)$")


def _fix_headings(body: str, title: str) -> tuple[str, list[str]]:
    """Add a missing H1, demote extra H1s, close skipped levels (outside code fences)."""
    notes: list[str] = []
    lines = body.splitlines()
    in_fence = False
    seen_h1 = False
    previous = 0
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _HEADING_LINE.match(line)
        if not match:
            continue
        level = len(match.group(1))
        new = level
        if level == 1:
            if seen_h1:
                new = 2
                notes.append(f"demoted extra H1 '{match.group(2).strip()}' to H2")
            seen_h1 = True
        elif previous and level > previous + 1:
            new = previous + 1
            notes.append(f"H{level} '{match.group(2).strip()}' after H{previous} became H{new}")
        elif not previous and level > 2:
            new = 2
            notes.append(f"first heading H{level} '{match.group(2).strip()}' became H2")
        if new != level:
            lines[i] = "#" * new + match.group(2)
        previous = new
    text = "\n".join(lines)
    if not seen_h1:
        text = f"# {title}\n\n{text.lstrip()}"
        notes.append("added the title as the H1")
    return text.rstrip() + "\n", notes


def optimize(article: Article, config: SeoConfig) -> tuple[Article, list[dict[str, str]]]:
    """The article with every safe fix applied, and the list of changes made."""
    changes: list[dict[str, str]] = []
    kw = article.focus_keyword
    new = article

    def change(name: str, before: str, after: str, reason: str) -> None:
        changes.append({"field": name, "before": before, "after": after, "reason": reason})

    # Title: keyword in front when it fits; a too-long "Title: subtitle" loses the subtitle.
    title = new.title
    if len(title) > config.title_max_length and ":" in title:
        head = title.split(":", 1)[0].strip()
        if len(head) >= config.title_min_length // 2 and (not kw or contains_keyword(head, kw)):
            title = head
    if kw and not contains_keyword(title, kw):
        candidate = f"{title_case(kw)}: {title}"
        if len(candidate) <= config.title_max_length:
            title = candidate
    if title != new.title:
        change("title", new.title, title, "focus keyword first / within the length limit")
        body = new.body
        old_h1 = re.compile(r"^#[ \t]+" + re.escape(new.title) + r"[ \t]*#*[ \t]*$", re.MULTILINE)
        body = old_h1.sub(f"# {title}", body, count=1)
        new = new.model_copy(update={"title": title, "body": body})

    body, notes = _fix_headings(new.body, new.title)
    for note in notes:
        change("headings", "", "", note)
    new = new.model_copy(update={"body": body})

    slug_now = _slug(new, config)
    if slug_now.score < 100:
        slug = slugify(new.title, config.slug_max_length)
        kw_parts = slugify(kw, drop_stopwords=False).split("-") if kw else []
        if not all(p in slug.split("-") for p in kw_parts):
            slug = slugify(f"{kw} {new.title}", config.slug_max_length)
        if slug and slug != new.slug:
            change("slug", new.slug, slug, slug_now.explanation)
            new = new.model_copy(update={"slug": slug})

    meta = new.meta_description
    if len(meta) < config.meta_min_length:
        source = first_paragraph(new.body)
        if len(source) > len(meta):
            meta = truncate_words(source, config.meta_max_length)
    elif len(meta) > config.meta_max_length:
        meta = truncate_words(meta, config.meta_max_length)
    if meta != new.meta_description:
        change("meta_description", new.meta_description, meta, "fit the length range")
        new = new.model_copy(update={"meta_description": meta})
    return new, changes


class SeoInput(BaseModel):
    """The inputs ``execute_core_function`` reads (``execute_task`` passes only these)."""

    article: dict[str, Any]
    keywords: list[str] | str | None = None
    optimize: bool | None = None


class SeoAgent(BaseAgent):
    """Scores an article, applies the safe fixes, and explains every sub-score."""

    config_model: ClassVar[type[BaseModel] | None] = SeoConfig
    input_model: ClassVar[type[BaseModel] | None] = SeoInput
    # execute_task hands it the article of the content generator it depends on.
    consumes = (Consumes("article", "generate_content", "article"),)
    config: SeoConfig

    def __init__(self) -> None:
        super().__init__(agent_name="SEO Agent", version="2.0.0")
        self.config = SeoConfig()

    async def initialize(self) -> bool:
        self.status = AgentStatus.HEALTHY
        return True

    def headline(self, result: dict[str, Any]) -> str | None:
        changes = len(result.get("changes", []))
        return (
            f"score {result.get('score_before')} -> {result.get('score')}, "
            f"{changes} change{'s' if changes != 1 else ''}, "
            f"{len(result.get('suggestions', []))} suggestion(s)"
        )

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        unknown = sorted(set(kwargs) - set(SeoInput.model_fields))
        if unknown:
            raise PermanentError(f"seo_optimize: unknown input(s) {', '.join(unknown)}")
        article = parse_article(kwargs.get("article"))
        if kwargs.get("keywords"):
            article = article.model_copy(update={"keywords": keyword_list(kwargs["keywords"])})
        do_optimize = bool(kwargs.get("optimize", self.config.optimize))
        before, _ = analyze(article, self.config)
        optimized, changes = optimize(article, self.config) if do_optimize else (article, [])
        score, subs = analyze(optimized, self.config)
        return {
            "score": score,
            "score_before": before,
            "keyword": optimized.focus_keyword,
            "subscores": [s.as_dict() for s in subs],
            "changes": changes,
            "suggestions": [f"{s.name}: {s.explanation}" for s in subs if s.status != "good"],
            "article": optimized.model_dump(),
        }
