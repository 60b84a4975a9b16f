"""The SEO agent: every sub-score measured and explained, and only safe fixes applied."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devskyy.agents._content_text import Article
from devskyy.agents.seo import WEIGHTS, SeoAgent, SeoConfig, analyze, optimize
from devskyy.errors import PermanentError
from devskyy.runtime.agent import AgentContext

PARAGRAPH = (
    "A capsule wardrobe is a small set of clothes that work well together. "
    "You pick pieces you love and wear them often. It saves time and money. "
    "It also means less waste. "
)
GOOD_BODY = (
    "# Capsule Wardrobe Basics for Busy Professionals\n\n"
    + PARAGRAPH
    + "\n\n## Why a Capsule Wardrobe Works\n\n"
    + (PARAGRAPH.replace("A capsule wardrobe", "The idea") * 3)
    + "\n\n## How to Start Today\n\n"
    + (PARAGRAPH.replace("A capsule wardrobe", "This plan") * 3)
    + "\n\nRead [our guide](/guides/wardrobe) and the "
    "[research](https://research.example.org/study).\n"
)


def good_article(**changes: Any) -> Article:
    base = Article(
        title="Capsule Wardrobe Basics for Busy Professionals",
        slug="capsule-wardrobe-basics",
        meta_description=(
            "A capsule wardrobe is a small set of clothes that work well together. "
            "Learn how to build one that saves time, money and waste."
        ),
        body=GOOD_BODY,
        keywords=["capsule wardrobe"],
    )
    return base.model_copy(update=changes)


def subscores(article: Article, config: SeoConfig | None = None) -> dict[str, Any]:
    _, subs = analyze(article, config or SeoConfig())
    return {s.name: s for s in subs}


def test_a_well_made_article_scores_well_on_every_rule() -> None:
    score, subs = analyze(good_article(), SeoConfig(min_words=150))
    assert [s.name for s in subs] == list(WEIGHTS)
    by_name = {s.name: s for s in subs}
    for name in ("title", "meta_description", "slug", "headings", "keyword_placement", "links"):
        assert by_name[name].score == 100, (name, by_name[name].explanation)
    assert by_name["readability"].score == 100
    assert by_name["keyword_density"].value["count"] == 3  # H1, intro, one H2
    assert score >= 90
    assert by_name["links"].explanation == ("1 internal and 1 external links (want 1+ and 1+)")
    assert by_name["headings"].explanation == "one H1, sections under H2, no skipped levels"


def test_title_length_is_measured_and_explained() -> None:
    sub = subscores(good_article(title="Capsule Wardrobe"))["title"]
    assert sub.value == {"length": 16}
    assert sub.score == pytest.approx(100 * 16 / 30)
    assert sub.explanation == (
        "title is 16 characters, outside 30-60; search results cut longer titles"
    )
    long = subscores(good_article(title="x" * 90))["title"]
    assert long.score == pytest.approx(50.0)


def test_meta_description_missing_short_or_without_keyword() -> None:
    assert subscores(good_article(meta_description=""))["meta_description"].score == 0
    sub = subscores(good_article(meta_description="Clothes that work together." * 5))[
        "meta_description"
    ]
    assert sub.value["has_keyword"] is False
    assert sub.explanation.endswith("; it lacks the focus keyword")


def test_slug_rules() -> None:
    assert subscores(good_article(slug="Capsule_Wardrobe!"))["slug"].explanation == (
        "slug is not lowercase words joined by single hyphens; missing the focus keyword"
    )
    long = subscores(good_article(slug="capsule-wardrobe-" + "-".join(["word"] * 20)))["slug"]
    assert long.explanation == "slug is longer than 60 characters"
    assert subscores(good_article(slug=""))["slug"].score == 0


def test_heading_structure_problems_are_each_named() -> None:
    body = "Intro without a title.\n\n# One\n\n#### Deep\n\n# Two\n"
    sub = subscores(good_article(body=body))["headings"]
    assert sub.explanation == (
        "2 H1 headings (want exactly one); 0 H2 subheadings (want at least 2); skipped levels H1→H4"
    )
    assert sub.score == pytest.approx(100 - 40 - 30 - 15)


def test_keyword_placement_names_the_missing_places() -> None:
    article = good_article(title="Build a Wardrobe That Works for Busy People")
    sub = subscores(article)["keyword_placement"]
    assert sub.value["title"] is False
    assert sub.value["h1"] is True
    assert sub.score == 80
    assert sub.explanation == "'capsule wardrobe' appears in 4 of 5 key places; missing from title"


def test_keyword_density_flags_stuffing_and_absence() -> None:
    stuffed = "# Capsule wardrobe\n\n" + "capsule wardrobe is great. " * 30
    sub = subscores(good_article(body=stuffed))["keyword_density"]
    assert sub.value["percent"] > 2.5
    assert "above (stuffing)" in sub.explanation
    absent = subscores(good_article(body="# Title\n\n" + "Plain words here. " * 50))
    assert absent["keyword_density"].score == 0
    assert absent["keyword_density"].explanation.startswith("'capsule wardrobe' occurs 0 times")


def test_readability_and_length_use_the_prose_only() -> None:
    hard = (
        "# Title\n\n"
        + "Comprehensive organizational standardization necessitates interdepartmental "
        "communication infrastructure modernization initiatives. " * 10
    )
    subs = subscores(good_article(body=hard))
    assert subs["readability"].score == 0
    assert subs["readability"].value["flesch_reading_ease"] < 0
    assert subs["content_length"].value == {"words": 91}
    assert subs["content_length"].explanation == "91 words (thin; aim for 300+)"


def test_links_are_split_by_site_hosts() -> None:
    body = GOOD_BODY + "\nMore on [our blog](https://blog.shop.com/x).\n"
    plain = subscores(good_article(body=body))["links"]
    assert plain.value == {"internal": 1, "external": 2}
    site = subscores(good_article(body=body), SeoConfig(site_hosts=["shop.com"]))["links"]
    assert site.value == {"internal": 2, "external": 1}
    none = subscores(good_article(body="# T\n\nNo links.\n"))["links"]
    assert none.score == 0


def test_optimize_fixes_what_is_safe_and_leaves_prose_alone() -> None:
    body = (
        "Intro: a capsule wardrobe keeps mornings simple and saves you money every week. "
        "You choose fewer pieces and wear them all.\n\n"
        "## Section\n\n#### Too Deep\n\nText stays exactly as written.\n"
    )
    article = Article(
        title="Simple Mornings With Fewer Clothes",
        slug="Simple Mornings!!",
        meta_description="",
        body=body,
        keywords=["capsule wardrobe"],
    )
    new, changes = optimize(article, SeoConfig())
    assert new.title == "Capsule Wardrobe: Simple Mornings With Fewer Clothes"
    assert new.slug == "capsule-wardrobe-simple-mornings-fewer-clothes"
    assert new.meta_description == (
        "Intro: a capsule wardrobe keeps mornings simple and saves you money every week. "
        "You choose fewer pieces and wear them all."
    )
    assert new.body.startswith("# Capsule Wardrobe: Simple Mornings With Fewer Clothes\n\nIntro:")
    assert "\n### Too Deep\n" in new.body
    assert "Text stays exactly as written." in new.body
    fields = [c["field"] for c in changes]
    assert fields == ["title", "headings", "headings", "slug", "meta_description"]
    assert [c["reason"] for c in changes if c["field"] == "headings"] == [
        "H4 'Too Deep' after H2 became H3",
        "added the title as the H1",
    ]
    before, _ = analyze(article, SeoConfig())
    after, _ = analyze(new, SeoConfig())
    assert after > before


def test_optimize_lifts_a_deep_first_heading() -> None:
    new, changes = optimize(good_article(body="Intro.\n\n### Deep\n\nText.\n"), SeoConfig())
    assert new.body.startswith(f"# {new.title}\n\nIntro.\n\n## Deep\n")
    assert [c["reason"] for c in changes if c["field"] == "headings"] == [
        "first heading H3 'Deep' became H2",
        "added the title as the H1",
    ]


def test_optimize_demotes_extra_h1s() -> None:
    body = "# Capsule Wardrobe Basics\n\nIntro.\n\n## A\n\n# Another Top Heading\n\nText.\n"
    new, changes = optimize(good_article(body=body), SeoConfig())
    assert new.body == (
        "# Capsule Wardrobe Basics\n\nIntro.\n\n## A\n\n## Another Top Heading\n\nText.\n"
    )
    assert [c["reason"] for c in changes if c["field"] == "headings"] == [
        "demoted extra H1 'Another Top Heading' to H2"
    ]


def test_optimize_updates_the_h1_with_the_title_and_trims_long_meta() -> None:
    article = good_article(
        title="Simple Mornings With Fewer Clothes",
        body=GOOD_BODY.replace(
            "# Capsule Wardrobe Basics for Busy Professionals",
            "# Simple Mornings With Fewer Clothes",
        ),
        meta_description="word " * 60,
    )
    new, _ = optimize(article, SeoConfig())
    assert new.body.startswith("# Capsule Wardrobe: Simple Mornings With Fewer Clothes\n")
    assert len(new.meta_description) <= 160
    assert new.meta_description.endswith("…")


def test_optimize_does_not_force_the_keyword_when_the_title_would_be_too_long() -> None:
    title = "A Very Long Title About Dressing Well on Busy Mornings"
    new, changes = optimize(good_article(title=title), SeoConfig())
    assert new.title == title
    assert not [c for c in changes if c["field"] == "title"]


def test_optimize_drops_a_subtitle_from_a_too_long_title() -> None:
    title = "Capsule Wardrobe Basics: Everything You Need to Know Before You Buy Anything"
    new, _ = optimize(good_article(title=title), SeoConfig())
    assert new.title == "Capsule Wardrobe Basics"


def test_optimize_keeps_headings_inside_code_fences() -> None:
    body = "# T\n\n## A\n\n```\n# comment\n#### also a comment\n```\n\n## B\n"
    new, changes = optimize(good_article(body=body, title="T"), SeoConfig())
    assert "```\n# comment\n#### also a comment\n```" in new.body
    assert not [c for c in changes if c["field"] == "headings"]


def test_the_agent_returns_scores_changes_suggestions_and_the_article() -> None:
    agent = SeoAgent()
    agent.bind(AgentContext(name="seo", config={"minWords": 100, "site_hosts": ["example.com"]}))
    assert asyncio.run(agent.initialize()) is True
    article = good_article(slug="BAD SLUG").model_dump()
    out = asyncio.run(agent.execute_core_function(article=article))
    assert out["keyword"] == "capsule wardrobe"
    assert out["article"]["slug"] == "capsule-wardrobe-basics-busy-professionals"
    assert out["score"] > out["score_before"]
    assert len(out["subscores"]) == len(WEIGHTS)
    first = out["subscores"][0]
    assert set(first) == {"name", "score", "weight", "status", "explanation", "value"}
    assert out["changes"][0]["field"] == "slug"
    assert all(s.split(":")[0] in WEIGHTS for s in out["suggestions"])

    untouched = asyncio.run(agent.execute_core_function(article=article, optimize=False))
    assert untouched["article"] == article
    assert untouched["score"] == untouched["score_before"]

    other = asyncio.run(agent.execute_core_function(article=article, keywords="busy professionals"))
    assert other["keyword"] == "busy professionals"


def test_the_agent_refuses_bad_input() -> None:
    agent = SeoAgent()
    agent.bind(AgentContext(name="seo"))
    with pytest.raises(PermanentError, match=r"^seo_optimize: unknown input\(s\) content$"):
        asyncio.run(agent.execute_core_function(content={}))
    with pytest.raises(PermanentError, match=r"^article: expected an object, got NoneType$"):
        asyncio.run(agent.execute_core_function())
