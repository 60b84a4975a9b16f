"""Pure text helpers of the content agents: slugs, Markdown structure, readability."""

from __future__ import annotations

import pytest

from devskyy.agents._content_text import (
    Article,
    contains_keyword,
    first_paragraph,
    fit_sentences,
    headings,
    is_internal,
    keyword_list,
    keyword_occurrences,
    links,
    parse_article,
    plain_text,
    readability,
    render_html,
    sentences,
    slugify,
    syllables,
    templates,
    title_case,
    truncate_words,
    words,
)
from devskyy.errors import PermanentError

DOC = """# Main Title

Intro with [a link](https://example.com/page) and [an inside one](/about).
See <https://other.org/x> too. ![logo](https://cdn.example.com/logo.png)

## Section One

```python
# not a heading
print("[not](a-link)")
```

### Detail

Text.
"""


def test_slugify_drops_stopwords_accents_and_cuts_at_a_word() -> None:
    assert slugify("The Café Guide to Déjà Vu & More!") == "cafe-guide-deja-vu-more"
    assert slugify("How to Build a Capsule Wardrobe", max_length=20) == "build-capsule"
    assert slugify("The and of") == "the-and-of"  # nothing but stop words: keep them
    assert slugify("Antidisestablishmentarianism", max_length=10) == "antidisest"
    assert slugify("!!!") == ""


def test_headings_and_links_ignore_code_blocks_and_images() -> None:
    assert headings(DOC) == [(1, "Main Title"), (2, "Section One"), (3, "Detail")]
    assert links(DOC) == ["https://example.com/page", "/about", "https://other.org/x"]


def test_internal_links_are_relative_or_on_the_site_hosts() -> None:
    hosts = ["example.com"]
    assert is_internal("/about", hosts)
    assert is_internal("#top", hosts)
    assert is_internal("https://example.com/a", hosts)
    assert is_internal("https://blog.example.com/a", hosts)
    assert not is_internal("https://notexample.com/a", hosts)
    assert not is_internal("https://other.org", hosts)
    assert not is_internal("mailto:me@example.com", hosts)


def test_plain_text_and_first_paragraph() -> None:
    text = plain_text(DOC)
    assert "a link" in text
    assert "https://example.com/page" not in text
    assert "print" not in text
    assert "Main Title" in text
    assert first_paragraph(DOC) == (
        "Intro with a link and an inside one. See https://other.org/x too. logo"
    )


def test_keywords_match_whole_words_case_insensitively() -> None:
    text = (
        "Capsule wardrobe basics. A capsule-wardrobe? No: capsule wardrobes differ. "
        "CAPSULE WARDROBE."
    )
    assert keyword_occurrences(text, "capsule wardrobe") == 2
    assert contains_keyword("Why Capsule Wardrobe Matters", "capsule wardrobe")
    assert not contains_keyword("capsules wardrobe", "capsule wardrobe")
    assert keyword_occurrences(text, "") == 0
    assert keyword_list("a, b , A,, c") == ["a", "b", "c"]
    assert keyword_list(["x y", " x  y "]) == ["x y"]


def test_sentences_split_on_lines_and_terminal_punctuation() -> None:
    assert sentences('Heading\nOne. Two! Three? "Four." Five') == [
        "Heading",
        "One.",
        "Two!",
        "Three?",
        '"Four."',
        "Five",
    ]
    assert words("It's a well-known fact—really.") == ["It's", "a", "well-known", "fact", "really"]


@pytest.mark.parametrize(
    ("word", "count"),
    [("the", 1), ("cat", 1), ("table", 2), ("create", 2), ("readability", 5), ("beautiful", 3)],
)
def test_syllables(word: str, count: int) -> None:
    assert syllables(word) == count


def test_readability_follows_the_flesch_formulas() -> None:
    # 8 one-syllable words in 2 sentences: 206.835 - 1.015*4 - 84.6*1 = 118.2 (rounded)
    r = readability("The cat sat down. The dog ran off.")
    assert (r.words, r.sentences, r.syllables) == (8, 2, 8)
    assert r.flesch_reading_ease == round(206.835 - 1.015 * 4 - 84.6, 1)
    assert r.flesch_kincaid_grade == round(0.39 * 4 + 11.8 - 15.59, 1)
    hard = readability(
        "Comprehensive organizational standardization necessitates interdepartmental "
        "communication infrastructure modernization initiatives."
    )
    assert hard.flesch_reading_ease < 0 < r.flesch_reading_ease
    assert readability("").words == 0


def test_truncation_helpers() -> None:
    assert truncate_words("short", 10) == "short"
    assert truncate_words("one two three four", 12) == "one two…"
    assert len(truncate_words("word " * 100, 50)) <= 50
    text = "First sentence here. Second one is longer than that. Third."
    assert fit_sentences(text, 30) == "First sentence here."
    assert fit_sentences(text, 30, min_length=25) == "First sentence here. Second…"
    assert fit_sentences(text, 500) == text


def test_title_case_keeps_small_words_low_except_first_and_after_colon() -> None:
    assert title_case("the art of war: a guide to SEO") == "The Art of War: A Guide to SEO"


def test_parse_article_reports_every_problem() -> None:
    with pytest.raises(PermanentError) as err:
        parse_article({"title": "", "extra": 1})
    assert str(err.value) == (
        "article is invalid: title: String should have at least 1 character; "
        "body: Field required; extra: Extra inputs are not permitted"
    )
    with pytest.raises(PermanentError, match=r"^article: expected an object, got str$"):
        parse_article("text")
    art = Article(title="T", body="# T\n", keywords=["k"])
    assert parse_article(art) is art
    assert art.focus_keyword == "k"


def test_render_html_escapes_raw_html() -> None:
    html = render_html("# T\n\n<script>alert(1)</script>\n\nHi <b>x</b> [a](https://e.com)")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert '<a href="https://e.com">a</a>' in html


def test_templates_ship_and_escape_html_only() -> None:
    env = templates()
    for name in (
        "article.md.j2",
        "prompt.txt.j2",
        "article.html.j2",
        "email.txt.j2",
        "email.html.j2",
    ):
        env.get_template(name)
    assert env.from_string("{{ x }}").render(x="<b>") == "<b>"  # not an .html.j2 template
