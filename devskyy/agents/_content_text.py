"""Shared pieces of the content agents: the ``Article`` value, Markdown text analysis, templates.

Everything here is pure (text in, values out) except ``templates()``, which reads the
Jinja2 templates shipped in ``devskyy/agents/templates``. Readability uses the Flesch
formulas with syllables counted by pyphen's hyphenation dictionaries (shipped inside the
pyphen wheel) cross-checked by a vowel-group rule. textstat was the first choice, but its
current releases download NLTK's cmudict at run time (``nltk.download``), which an offline
server or CI cannot do; the formulas themselves are public and short.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import markdown
import pyphen  # type: ignore[import-untyped]
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devskyy.errors import PermanentError

# Words a slug can do without.
STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "in", "is", "it"}
    | {"of", "on", "or", "our", "the", "to", "what", "why", "with", "your", "you", "we", "this"}
    | {"that", "these", "those"}
)
_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"')\]])\s+")
_VOWELS = re.compile(r"[aeiouy]+")
_SMALL_WORDS = frozenset(
    ["a", "an", "and", "as", "at", "but", "by", "for", "in", "nor", "of", "on", "or", "the", "to"]
)


class Article(BaseModel):
    """The document that flows generate → SEO → publish (JSON between steps)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    slug: str = ""
    meta_description: str = ""
    body: str = Field(min_length=1, description="Markdown, including the H1 title")
    keywords: list[str] = Field(default_factory=list)
    topic: str = ""
    audience: str = ""
    tone: str = ""
    author: str = ""
    language: str = "en"

    @property
    def focus_keyword(self) -> str:
        """The first keyword, the one the SEO rules check most strictly."""
        return self.keywords[0] if self.keywords else ""


def parse_article(value: Any, what: str = "article") -> Article:
    """Validate a step input as an ``Article``; a bad one is a ``PermanentError``."""
    if isinstance(value, Article):
        return value
    if not isinstance(value, dict):
        raise PermanentError(f"{what}: expected an object, got {type(value).__name__}")
    try:
        return Article.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or what}: {err['msg']}" for err in exc.errors()
        )
        raise PermanentError(f"{what} is invalid: {problems}") from None


def keyword_list(value: Any) -> list[str]:
    """Keywords given as a list or as one comma-separated string, trimmed, deduplicated."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    seen: dict[str, str] = {}
    for item in items:
        text = " ".join(str(item).split())
        if text and text.lower() not in seen:
            seen[text.lower()] = text
    return list(seen.values())


# -- Markdown structure ---------------------------------------------------------------


def without_code(markdown: str) -> str:
    """The Markdown with fenced code blocks removed (they are not prose)."""
    return _FENCE.sub("", markdown)


def headings(markdown: str) -> list[tuple[int, str]]:
    """ATX headings as (level, text), in order, outside code blocks."""
    text = without_code(markdown)
    return [(len(m.group(1)), m.group(2).strip()) for m in _HEADING.finditer(text)]


def links(markdown: str) -> list[str]:
    """Link targets (inline links and autolinks; images excluded), in order."""
    text = without_code(markdown)
    return [m.group(2) for m in _LINK.finditer(text)] + _AUTOLINK.findall(text)


def is_internal(url: str, site_hosts: list[str]) -> bool:
    """Relative links, anchors and links to one of ``site_hosts`` are internal."""
    match = re.match(r"^[a-z][a-z0-9+.-]*://([^/:?#]+)", url, re.IGNORECASE)
    if not match:
        return not url.lower().startswith(("mailto:", "tel:"))
    host = match.group(1).lower()
    return any(host == h.lower() or host.endswith("." + h.lower()) for h in site_hosts)


def plain_text(markdown: str) -> str:
    """Prose only: code, images, link targets, markup and HTML tags removed; lines kept."""
    text = without_code(markdown)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"^[ \t]*(#{1,6}|[-*+]|\d+[.)]|>)[ \t]+", "", text, flags=re.MULTILINE)
    return re.sub(r"[*_]{1,3}([^*_\n]+)[*_]{1,3}", r"\1", text)


def first_paragraph(markdown: str) -> str:
    """The first block of prose that is not a heading, list, quote or code."""
    for block in re.split(r"\n\s*\n", without_code(markdown)):
        stripped = block.strip()
        if stripped and not re.match(r"^(#{1,6}\s|[-*+]\s|\d+[.)]\s|>|\||<)", stripped):
            return " ".join(plain_text(stripped).split())
    return ""


# -- words, keywords, readability -----------------------------------------------------


def words(text: str) -> list[str]:
    """Word tokens of plain text."""
    return _WORD.findall(text)


def sentences(text: str) -> list[str]:
    """Sentences: every line is a boundary (headings, list items), then . ! ? inside lines."""
    found: list[str] = []
    for line in text.splitlines():
        found.extend(s for s in _SENTENCE_END.split(line.strip()) if words(s))
    return found


def keyword_occurrences(text: str, keyword: str) -> int:
    """How often the keyword phrase occurs as a whole-word sequence (case-insensitive)."""
    target = [w.lower() for w in words(keyword)]
    if not target:
        return 0
    tokens = [w.lower() for w in words(text)]
    n = len(target)
    return sum(1 for i in range(len(tokens) - n + 1) if tokens[i : i + n] == target)


def contains_keyword(text: str, keyword: str) -> bool:
    return keyword_occurrences(text, keyword) > 0


@cache
def _dictionary(language: str) -> pyphen.Pyphen:
    lang = language if language in pyphen.LANGUAGES else "en_US"
    return pyphen.Pyphen(lang=lang)


def _vowel_groups(word: str) -> int:
    w = word.lower()
    count = len(_VOWELS.findall(w))
    if w.endswith("e") and not w.endswith(("le", "ee", "ye")) and count > 1:
        count -= 1  # silent final e: "make", "create" keeps its "ea" group
    return max(1, count)


@lru_cache(maxsize=65536)
def syllables(word: str, language: str = "en") -> int:
    """Syllables of one word: the larger of pyphen's break count and the vowel-group count.

    Hyphenation dictionaries never break the first and last two letters, so they undercount
    (``read-abil-i-ty``); vowel groups overcount diphthongs less often than that.
    """
    if not word:
        return 0
    breaks = len(_dictionary("en_US" if language == "en" else language).positions(word)) + 1
    if language.startswith("en"):
        return max(breaks, _vowel_groups(word))
    return breaks


@dataclass(frozen=True)
class Readability:
    """Counts and the two Flesch scores of a text."""

    words: int
    sentences: int
    syllables: int
    flesch_reading_ease: float
    flesch_kincaid_grade: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "words": self.words,
            "sentences": self.sentences,
            "syllables": self.syllables,
            "flesch_reading_ease": self.flesch_reading_ease,
            "flesch_kincaid_grade": self.flesch_kincaid_grade,
        }


def readability(text: str, language: str = "en") -> Readability:
    """Flesch reading ease (0-100, higher is easier) and Flesch-Kincaid grade level."""
    tokens = words(text)
    n_words = len(tokens)
    n_sentences = max(1, len(sentences(text))) if n_words else 0
    n_syllables = sum(syllables(w, language) for w in tokens)
    if not n_words:
        return Readability(0, 0, 0, 0.0, 0.0)
    wps = n_words / n_sentences
    spw = n_syllables / n_words
    ease = 206.835 - 1.015 * wps - 84.6 * spw
    grade = 0.39 * wps + 11.8 * spw - 15.59
    return Readability(n_words, n_sentences, n_syllables, round(ease, 1), round(grade, 1))


# -- small text edits -------------------------------------------------------------------


def slugify(text: str, max_length: int = 60, drop_stopwords: bool = True) -> str:
    """A URL slug: ASCII, lowercase, hyphens; stop words dropped; cut at a word boundary."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    parts = re.findall(r"[a-z0-9]+", ascii_text.lower())
    kept = [p for p in parts if p not in STOPWORDS] if drop_stopwords else parts
    parts = kept or parts
    slug = ""
    for part in parts:
        candidate = f"{slug}-{part}" if slug else part
        if len(candidate) > max_length:
            break
        slug = candidate
    return slug or (parts[0][:max_length] if parts else "")


def truncate_words(text: str, limit: int, ellipsis: str = "…") -> str:
    """``text`` if it fits, else cut at a word boundary so the result plus ellipsis fits."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    room = limit - len(ellipsis)
    cut = text[: room + 1]
    cut = cut[: cut.rfind(" ")] if " " in cut else text[:room]
    return cut.rstrip(" ,;:.-\u2013\u2014") + ellipsis


def fit_sentences(text: str, limit: int, min_length: int = 0) -> str:
    """Whole sentences from the start that fit in ``limit``; word cut when that is too short."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    kept = ""
    for sentence in _SENTENCE_END.split(text):
        candidate = f"{kept} {sentence}" if kept else sentence
        if len(candidate) > limit:
            break
        kept = candidate
    return kept if kept and len(kept) >= min_length else truncate_words(text, limit)


def title_case(text: str) -> str:
    """Headline case: capitalise each word except short joining words (not the first)."""
    out: list[str] = []
    for i, word in enumerate(text.split()):
        lower = word.lower()
        after_colon = bool(out) and out[-1].endswith((":", "?", "!", "—"))
        if i and not after_colon and lower in _SMALL_WORDS:
            out.append(lower)
        elif word.isupper() and len(word) > 1:
            out.append(word)  # acronyms stay
        else:
            out.append(word[:1].upper() + word[1:])
    return " ".join(out)


def render_html(body: str) -> str:
    """Markdown to HTML with raw HTML escaped (generated text may contain tags)."""
    md = markdown.Markdown(extensions=["extra", "sane_lists"], output_format="html")
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md.convert(body)


# -- templates -----------------------------------------------------------------------


@cache
def templates() -> Environment:
    """The Jinja2 environment over ``devskyy/agents/templates`` (HTML autoescaped)."""
    env = Environment(
        loader=PackageLoader("devskyy.agents", "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2",), default=False, default_for_string=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["title_case"] = title_case
    env.filters["capfirst"] = lambda text: str(text)[:1].upper() + str(text)[1:]
    return env
