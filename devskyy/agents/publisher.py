"""The publisher (capability ``publish``): the article as files, or POSTed to a webhook.

Files: ``<slug>.md`` (YAML front matter + Markdown) and ``<slug>.html`` (a full page,
Markdown rendered by Python-Markdown with raw HTML escaped, since generated text is not
trusted) in ``config.output_dir`` (default ``<state dir>/published``). Each file is written
through ``devskyy.adapters.safe_files``: to an exclusive temporary file in the same folder,
moved into place with a rename, so a reader never sees half a file, and never through a
symbolic link (a page or folder that is a link is refused, naming it). Publishing is
idempotent by slug: the first publication's ``date`` is kept, and when the rendered files
equal what is on disk nothing is written and the result is ``unchanged``; a changed article
gets ``updated``.

Webhook: a JSON POST with an ``Idempotency-Key`` (slug + content hash), retried with
exponential backoff on network errors, 408, 429 (honouring ``Retry-After``) and 5xx. The
last delivered hash per slug is kept under the state dir, so the same content is not sent
twice. A bearer token may come from an environment variable named in the config; it is
never logged or returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from devskyy.adapters import safe_files
from devskyy.agents._content_text import (
    Article,
    parse_article,
    render_html,
    slugify,
    templates,
)
from devskyy.core.retry import RetryPolicy
from devskyy.core.tasks import Consumes
from devskyy.errors import PermanentError, TemporaryError
from devskyy.runtime.agent import AgentStatus, BaseAgent
from devskyy.runtime.attempt import AttemptExecutor, Plan

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_SLUG = 200  # file names stay well under the usual 255-byte limit
Format = Literal["markdown", "html"]
ALL_FORMATS: tuple[Format, ...] = ("markdown", "html")


class PublisherConfig(BaseModel):
    """``spec.config`` of the publisher."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    output_dir: str | None = None
    formats: list[Format] = Field(default_factory=lambda: list(ALL_FORMATS), min_length=1)
    base_url: str | None = Field(default=None, description="site root for canonical URLs")
    webhook_url: str | None = None
    webhook_token_env: str | None = None
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_max_attempts: int = Field(default=3, ge=1, le=20)
    webhook_backoff_seconds: float = Field(default=1.0, ge=0)
    webhook_max_backoff_seconds: float = Field(default=60.0, ge=0)


def iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def read_front_matter(text: str) -> dict[str, Any]:
    """The YAML front matter of a published Markdown file ({} when absent or broken)."""
    if not text.startswith("---\n"):
        return {}
    end = text.find("\n---\n", 4)
    if end < 0:
        return {}
    try:
        data = yaml.safe_load(text[4:end])
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def render_files(
    article: Article, url: str | None, date: str, updated: str | None
) -> dict[Format, str]:
    """The Markdown and HTML texts of an article (deterministic given the dates)."""
    front: dict[str, Any] = {
        "title": article.title,
        "slug": article.slug,
        "description": article.meta_description,
        "keywords": article.keywords,
        "language": article.language,
        "date": date,
    }
    if article.author:
        front["author"] = article.author
    if updated:
        front["updated"] = updated
    if url:
        front["url"] = url
    head = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000)
    md_text = f"---\n{head}---\n\n{article.body.strip()}\n"
    html = (
        templates()
        .get_template("article.html.j2")
        .render(
            article=article,
            url=url,
            date=date,
            updated=updated,
            body_html=render_html(article.body),
        )
    )
    return {"markdown": md_text, "html": html}


def write_atomic(path: Path, text: str, mode: int = 0o644, *, root: Path | None = None) -> None:
    """Write ``text`` to ``path`` atomically, never through a symbolic link.

    ``root`` (default: the file's folder) is the trusted folder the write must stay in;
    ``devskyy.adapters.safe_files`` refuses (``UnsafeWrite``) a file or a folder below
    ``root`` that is a link. The file gets the mode of the file it replaces, else ``mode``
    (published pages are meant to be read; a bare temporary file would be 0600).
    """
    base = root if root is not None else path.parent
    base.mkdir(parents=True, exist_ok=True)
    safe_files.write_text(base, path.relative_to(base), text, default_mode=mode, make_parents=True)


def _read(root: Path, path: Path) -> str | None:
    """The text of ``path`` under ``root`` (None when absent), no link followed."""
    try:
        return safe_files.read_bytes(root, path.relative_to(root)).decode("utf-8")
    except FileNotFoundError:
        return None


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PublishInput(BaseModel):
    """The one input ``execute_core_function`` reads (``execute_task`` passes only it)."""

    article: dict[str, Any]


class PublisherAgent(BaseAgent):
    """Publishes an article to files (atomically, idempotent by slug) or to a webhook."""

    config_model: ClassVar[type[BaseModel] | None] = PublisherConfig
    input_model: ClassVar[type[BaseModel] | None] = PublishInput
    # execute_task hands it the article as the SEO agent it depends on optimized it.
    consumes = (Consumes("article", "seo_optimize", "article"),)
    config: PublisherConfig

    def __init__(self) -> None:
        super().__init__(agent_name="Publisher", version="2.0.0")
        self.config = PublisherConfig()

    @property
    def output_dir(self) -> Path:
        configured = self.config.output_dir
        return Path(configured) if configured else self.context.state_dir / "published"

    async def initialize(self) -> bool:
        templates().get_template("article.html.j2")
        self.status = AgentStatus.HEALTHY
        return True

    def _url(self, slug: str) -> str | None:
        base = self.config.base_url
        return f"{base.rstrip('/')}/{slug}/" if base else None

    def headline(self, result: dict[str, Any]) -> str | None:
        where = result.get("url") or (result.get("files") or {}).get("markdown", "")
        return f"{result.get('status')} {result.get('slug')} {where}".rstrip()

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        unknown = sorted(set(kwargs) - set(PublishInput.model_fields))
        if unknown:
            raise PermanentError(f"publish: unknown input(s) {', '.join(unknown)}")
        article = parse_article(kwargs.get("article"))
        slug = article.slug or slugify(article.title)
        if not SLUG.fullmatch(slug) or len(slug) > MAX_SLUG:
            raise PermanentError(
                f"slug {slug!r} is not lowercase words joined by hyphens "
                f"(at most {MAX_SLUG} characters); refusing to publish"
            )
        article = article.model_copy(update={"slug": slug})
        try:
            if self.config.webhook_url:
                return await self._post(article)
            return await asyncio.to_thread(self._write_files, article, self.clock.now())
        except safe_files.UnsafeWrite as exc:  # a page, record or folder that is a link
            raise PermanentError(f"publish: {exc}") from None

    # -- files ---------------------------------------------------------------------

    def _write_files(self, article: Article, now: float) -> dict[str, Any]:
        folder = self.output_dir
        folder.mkdir(parents=True, exist_ok=True)
        paths: dict[Format, Path] = {
            "markdown": folder / f"{article.slug}.md",
            "html": folder / f"{article.slug}.html",
        }
        existing_md = _read(folder, paths["markdown"])
        front = read_front_matter(existing_md or "")
        date = str(front.get("date") or iso(now))
        updated = str(front["updated"]) if front.get("updated") else None
        url = self._url(article.slug)
        wanted = self.config.formats
        texts = render_files(article, url, date, updated)
        same = existing_md is not None and all(_read(folder, paths[f]) == texts[f] for f in wanted)
        status = "unchanged" if same else "updated" if existing_md is not None else "created"
        if status == "updated":
            texts = render_files(article, url, date, iso(now))
        # The Markdown file carries the date record, so it is written in every case.
        written: list[Format] = list(dict.fromkeys(["markdown", *wanted]))
        if status != "unchanged":
            for fmt in written:
                write_atomic(paths[fmt], texts[fmt], root=folder)
        return {
            "target": "files",
            "status": status,
            "slug": article.slug,
            "title": article.title,
            "url": url,
            "files": {f: str(paths[f]) for f in written},
            "sha256": sha256(texts["markdown"]),
            "date": date,
        }

    # -- webhook ---------------------------------------------------------------------

    def _record_path(self, slug: str) -> Path:
        return self.context.state_dir / "published" / ".webhook" / f"{slug}.json"

    def _record_root(self) -> Path:
        """The trusted folder webhook records are kept under (the state dir)."""
        self.context.state_dir.mkdir(parents=True, exist_ok=True)
        return self.context.state_dir

    async def _post(self, article: Article) -> dict[str, Any]:
        url = self.config.webhook_url or ""
        texts = render_files(article, self._url(article.slug), "", None)
        digest = sha256(texts["markdown"])
        record_path = self._record_path(article.slug)
        previous = _read(self._record_root(), record_path)
        record = json.loads(previous) if previous else {}
        result: dict[str, Any] = {
            "target": "webhook",
            "slug": article.slug,
            "title": article.title,
            "webhook": url,
            "sha256": digest,
        }
        if record.get("sha256") == digest and record.get("webhook") == url:
            return {**result, "status": "unchanged", "attempts": 0}
        payload = {
            "slug": article.slug,
            "title": article.title,
            "description": article.meta_description,
            "keywords": article.keywords,
            "language": article.language,
            "author": article.author,
            "url": self._url(article.slug),
            "markdown": article.body,
            "html": render_html(article.body),
            "sha256": digest,
        }
        headers = {"Idempotency-Key": f"{article.slug}-{digest[:16]}"}
        token = os.environ.get(self.config.webhook_token_env or "", "").strip()
        if self.config.webhook_token_env and not token:
            raise PermanentError(
                f"webhookTokenEnv names {self.config.webhook_token_env}, which is not set"
            )
        if token:
            headers["Authorization"] = f"Bearer {token}"
        attempts, status_code = await self._deliver(url, payload, headers)
        status = "updated" if record else "created"
        now = self.clock.now()
        entry = {"sha256": digest, "webhook": url, "status_code": status_code, "at": iso(now)}
        text = json.dumps(entry, sort_keys=True)
        await asyncio.to_thread(write_atomic, record_path, text, root=self._record_root())
        return {**result, "status": status, "attempts": attempts, "status_code": status_code}

    async def _deliver(
        self, url: str, payload: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, int]:
        """POST until a 2xx; returns (attempts, status code). Retries what may pass later.

        The attempts run through devskyy's one attempt executor: exponential backoff from
        ``webhookBackoffSeconds``, capped at ``webhookMaxBackoffSeconds``, and a server's
        ``Retry-After`` honoured (within the cap).
        """
        cfg = self.config
        policy = RetryPolicy(
            max_attempts=cfg.webhook_max_attempts,
            initial_interval=cfg.webhook_backoff_seconds,
            backoff_coefficient=2.0,
            maximum_interval=cfg.webhook_max_backoff_seconds,
        )
        executor = AttemptExecutor(self.clock, self.context.random)
        async with httpx.AsyncClient(timeout=cfg.webhook_timeout_seconds) as client:

            async def post() -> int:
                return await _post_once(client, url, payload, headers)

            done = await executor.run(post, Plan(f"webhook {url}", policy))
        if done.result is not None:
            return done.attempts, done.result
        if isinstance(done.error, PermanentError):
            raise done.error
        raise TemporaryError(f"webhook {url} failed after {done.attempts} attempt(s): {done.error}")


class _Undelivered(TemporaryError):
    """One POST that may pass later (a network error, 5xx, 408, 425, 429)."""

    def __init__(self, text: str, retry_after: float | None = None) -> None:
        super().__init__(text)
        self.retry_after = retry_after


async def _post_once(
    client: httpx.AsyncClient, url: str, payload: dict[str, Any], headers: dict[str, str]
) -> int:
    """One POST: the 2xx status code, else ``_Undelivered`` or ``PermanentError``."""
    try:
        response = await client.post(url, json=payload, headers=headers)
    except httpx.HTTPError as exc:
        raise _Undelivered(f"{type(exc).__name__}: {exc}") from None
    code = response.status_code
    if 200 <= code < 300:
        return code
    last = f"HTTP {code}: {response.text[:200]}"
    if code not in (408, 425, 429) and code < 500:
        raise PermanentError(f"webhook {url} refused the article: {last}")
    retry_after = response.headers.get("Retry-After", "")
    raise _Undelivered(last, float(retry_after) if retry_after.isdigit() else None)
