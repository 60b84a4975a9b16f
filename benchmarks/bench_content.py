"""Benchmark: the content agents on one machine, against Python-Markdown as the floor.

Measured in the same run, best of ``--repeat``, on articles of ``--words`` words built
by the offline generator (its sections repeated):

* floor: ``markdown.markdown`` of the article (one parse of the text, the least any
  tool that reads Markdown does);
* seo: ``analyze`` + ``optimize`` + ``analyze`` (what the agent does per call);
* generate: the offline generator (template) per article;
* publish: Markdown + HTML files written atomically, then the same again (unchanged);
* social: posts for the six platforms.

Target: the SEO step within 5x of the Markdown floor (it reads the text several times:
structure, keywords, Flesch with syllable counts). Usage:
    .venv/bin/python benchmarks/bench_content.py [--words 3000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import markdown

from devskyy.agents._content_text import Article, plain_text, words
from devskyy.agents.content import Brief, offline_article
from devskyy.agents.publisher import PublisherAgent
from devskyy.agents.seo import SeoConfig, analyze, optimize
from devskyy.agents.social import PLATFORMS, compose
from devskyy.runtime.agent import AgentContext

BRIEF = Brief(
    topic="sustainable fashion for busy people",
    keywords=["capsule wardrobe", "secondhand clothes", "organic cotton", "repair"],
    audience="busy professionals",
)


def big_article(target_words: int) -> Article:
    base = offline_article(BRIEF, 155)
    head, _, rest = base.body.partition("\n## ")
    body = head
    n = 0
    while len(words(plain_text(body))) < target_words:
        body += f"\n## Part {n}: " + rest
        n += 1
    return base.model_copy(update={"body": body})


def best(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--words", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    article = big_article(args.words)
    n_words = len(words(plain_text(article.body)))
    config = SeoConfig()

    def seo() -> None:
        analyze(article, config)
        new, _ = optimize(article, config)
        analyze(new, config)

    floor = best(args.repeat, lambda: markdown.markdown(article.body))
    seo_time = best(args.repeat, seo)
    gen_time = best(args.repeat, lambda: offline_article(BRIEF, 155))
    social_time = best(args.repeat, lambda: [compose(article, r, None) for r in PLATFORMS.values()])

    with tempfile.TemporaryDirectory() as tmp:
        agent = PublisherAgent()
        agent.bind(AgentContext(name="publisher", state_dir=Path(tmp)))
        data = article.model_dump()
        first = best(1, lambda: asyncio.run(agent.execute_core_function(article=data)))
        again = best(args.repeat, lambda: asyncio.run(agent.execute_core_function(article=data)))

    print(f"article: {n_words} words, {len(article.body)} characters")
    print(f"floor    markdown.markdown       {floor * 1000:8.2f} ms")
    print(
        f"seo      analyze+optimize+analyze {seo_time * 1000:7.2f} ms  "
        f"({n_words / seo_time:,.0f} words/s, {seo_time / floor:.1f}x floor)"
    )
    print(f"generate offline template        {gen_time * 1000:8.2f} ms")
    print(f"social   six platforms           {social_time * 1000:8.2f} ms")
    print(
        f"publish  first write             {first * 1000:8.2f} ms; unchanged {again * 1000:.2f} ms"
    )
    verdict = "within" if seo_time <= 5 * floor else "OVER"
    print(f"target: seo within 5x of the floor: {verdict}")


if __name__ == "__main__":
    main()
