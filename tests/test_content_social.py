"""The social media agent: one post per platform, always within that platform's limits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devskyy.agents._content_text import Article
from devskyy.agents.social import (
    PLATFORMS,
    SocialConfig,
    SocialMediaAgent,
    compose,
    hashtag,
    platform,
    post_length,
    with_utm,
)
from devskyy.errors import PermanentError
from devskyy.runtime.agent import AgentContext

LONG_PARAGRAPH = " ".join(
    f"Sentence number {i} explains one more detail about building a capsule wardrobe."
    for i in range(60)
)
SECTIONS = "".join(f"## Section {i}: choosing pieces well\n\nText.\n\n" for i in range(8))
ARTICLE = Article(
    title="Capsule Wardrobe Basics for Busy Professionals",
    slug="capsule-wardrobe-basics",
    meta_description="Build a small wardrobe that works.",
    body=f"# Capsule Wardrobe Basics\n\n{LONG_PARAGRAPH}\n\n{SECTIONS}## Key takeaways\n\n- a\n",
    keywords=["capsule wardrobe", "slow fashion", "minimalism", "organic cotton"],
)
URL = "https://blog.example.com/capsule-wardrobe-basics/"


def agent(config: dict[str, Any] | None = None) -> SocialMediaAgent:
    a = SocialMediaAgent()
    a.bind(AgentContext(name="social_media", config=config or {}))
    assert asyncio.run(a.initialize()) is True
    return a


def test_x_counts_every_url_as_23_and_weighs_cjk_and_emoji_double() -> None:
    x = PLATFORMS["x"]
    assert post_length("hello " + "https://example.com/" + "a" * 100, x) == 6 + 23
    assert post_length("日本語", x) == 6
    assert post_length("café", x) == 4
    assert post_length("🙂", x) == 2
    assert post_length("https://a.b/c", PLATFORMS["linkedin"]) == len("https://a.b/c")
    assert post_length("https://a.b/c and more", PLATFORMS["mastodon"]) == 23 + 9


@pytest.mark.parametrize("name", sorted(PLATFORMS))
def test_every_platform_post_fits_its_limit(name: str) -> None:
    rules = PLATFORMS[name]
    post = compose(ARTICLE, rules, URL)
    assert post["platform"] == name
    assert post["length"] == post_length(post["text"], rules) <= rules.limit
    assert post["limit"] == rules.limit
    assert len(post["hashtags"]) <= rules.max_hashtags
    assert post["text"].startswith("Capsule Wardrobe Basics for Busy Professionals")


def test_x_post_gives_up_parts_in_order_and_says_so() -> None:
    post = compose(ARTICLE, PLATFORMS["x"], URL)
    assert post["given_up"] == ["summary (shortened)"]
    assert URL in post["text"]
    assert post["text"].endswith("#CapsuleWardrobe #SlowFashion")
    assert "Sentence number 0 explains" in post["text"]
    assert 250 <= post["length"] <= 280


def test_linkedin_keeps_key_points_without_generic_sections() -> None:
    post = compose(ARTICLE, PLATFORMS["linkedin"], URL)
    assert post["given_up"] == []
    assert "- Section 0: choosing pieces well" in post["text"]
    assert "- Section 4: choosing pieces well" in post["text"]
    assert "Section 5" not in post["text"]  # five points at most
    assert "Key takeaways" not in post["text"]
    assert post["hashtags"] == [
        "#CapsuleWardrobe",
        "#SlowFashion",
        "#Minimalism",
        "#OrganicCotton",
    ]


def test_instagram_has_no_link_and_threads_one_hashtag() -> None:
    insta = compose(ARTICLE, PLATFORMS["instagram"], URL)
    assert URL not in insta["text"]
    assert "Link in bio." in insta["text"]
    assert insta["link"] is None
    threads = compose(ARTICLE, PLATFORMS["threads"], URL)
    assert threads["hashtags"] == ["#CapsuleWardrobe"]


def test_instagram_allows_at_most_30_hashtags() -> None:
    many = ARTICLE.model_copy(update={"keywords": [f"tag {i}" for i in range(45)]})
    post = compose(many, PLATFORMS["instagram"], None)
    assert len(post["hashtags"]) == 30
    assert post["length"] <= 2200


def test_a_huge_title_is_cut_to_fit() -> None:
    huge = ARTICLE.model_copy(update={"title": "Word " * 120})
    post = compose(huge, PLATFORMS["x"], URL)
    assert post["length"] <= 280
    assert "title (shortened)" in post["given_up"]
    assert "hashtags" in post["given_up"]


def test_a_link_too_long_for_the_post_is_dropped() -> None:
    post = compose(ARTICLE, PLATFORMS["threads"], "https://example.com/" + "a" * 600)
    assert post["given_up"][-1] == "link"
    assert "https://" not in post["text"]
    assert post["length"] <= 500


def test_cjk_text_on_x_is_cut_by_weight() -> None:
    cjk = ARTICLE.model_copy(
        update={
            "title": "カプセルワードローブ入門",
            "body": "# T\n\n" + "服を減らすと朝が楽になります。" * 40,
        }
    )
    post = compose(cjk, PLATFORMS["x"], URL)
    assert post["length"] <= 280
    assert len(post["text"]) < 200  # most characters weigh two


def test_hashtags_and_utm_links() -> None:
    assert hashtag("capsule wardrobe") == "#CapsuleWardrobe"
    assert hashtag("e-commerce 2025!") == "#ECommerce2025"
    assert hashtag("!!!") == ""
    assert with_utm("https://a.com/x?y=1", "x", "launch") == (
        "https://a.com/x?y=1&utm_source=x&utm_medium=social&utm_campaign=launch"
    )
    assert with_utm("https://a.com/x", "x", None) == "https://a.com/x"


def test_platform_names_and_aliases() -> None:
    assert platform("Twitter").name == "x"
    assert platform(" IG ").name == "instagram"
    with pytest.raises(PermanentError) as err:
        platform("myspace")
    assert str(err.value) == (
        "unknown social platform 'myspace'; known: facebook, fb, ig, instagram, linkedin, "
        "mastodon, threads, twitter, x"
    )
    with pytest.raises(ValueError, match="unknown social platform 'orkut'"):
        SocialConfig(platforms=["orkut"])


def test_the_agent_builds_the_link_from_base_url_and_dedupes_platforms() -> None:
    a = agent({"base_url": "https://blog.example.com", "utmCampaign": "spring"})
    out = asyncio.run(
        a.execute_core_function(
            article=ARTICLE.model_dump(), platforms=["twitter", "x", "linkedin"]
        )
    )
    assert out["url"] == URL
    assert [p["platform"] for p in out["posts"]] == ["x", "linkedin"]
    assert out["posts"][0]["link"] == URL + "?utm_source=x&utm_medium=social&utm_campaign=spring"
    default = asyncio.run(agent().execute_core_function(article=ARTICLE.model_dump()))
    assert [p["platform"] for p in default["posts"]] == ["x", "linkedin", "facebook"]
    assert default["url"] is None
    assert "https://" not in default["posts"][0]["text"]


def test_the_agent_refuses_bad_input() -> None:
    with pytest.raises(PermanentError) as err:
        asyncio.run(agent().execute_core_function(article=ARTICLE.model_dump(), networks=["x"]))
    assert str(err.value) == (
        "social_posts: invalid input: networks: Extra inputs are not permitted"
    )
    with pytest.raises(PermanentError, match="unknown social platform 'friendster'"):
        asyncio.run(
            agent().execute_core_function(article=ARTICLE.model_dump(), platforms=["friendster"])
        )
