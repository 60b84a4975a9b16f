"""The e-mail agent (capability ``email_campaign``): a campaign mail rendered and sent by SMTP.

The message is rendered from ``templates/email.txt.j2`` and ``templates/email.html.j2``
(HTML autoescaped) into one ``multipart/alternative`` mail. When ``smtp_host`` is
configured it is sent with the standard library's ``smtplib`` (in a worker thread) to the
configured recipients, with STARTTLS, implicit TLS or, for a local relay, no TLS (the
server certificate is verified, against ``ca_file`` when a private CA signs it). The
password is read from the environment variable named by ``password_env``, never from the
manifest, and never appears in results or errors. Without ``smtp_host`` the mail is
rendered only and the result says ``not sent: SMTP not configured``.

Inside a workflow step the mail is keyed by run and step (``runtime.step_context``): its
Message-ID is derived from that key and the delivery is recorded in the store
(``adapters.sent_mail``), so a step re-run after a kill reports the first delivery instead
of sending the campaign again.

SMTP failures are classified for the step runner: 4xx replies, refused connections and
timeouts are ``TemporaryError``; authentication failures, refused recipients and other
5xx replies are ``PermanentError``.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from devskyy.adapters import failpoints
from devskyy.adapters.sent_mail import SentMail, SentMailStore, SqlSentMail
from devskyy.agents._content_text import (
    Article,
    first_paragraph,
    headings,
    parse_article,
    plain_text,
    render_html,
    templates,
)
from devskyy.core.tasks import Consumes
from devskyy.errors import PermanentError, TemporaryError
from devskyy.runtime.agent import AgentStatus, BaseAgent
from devskyy.runtime.step_context import current_step

NOT_CONFIGURED = "not sent: SMTP not configured"
_ADDRESS = r"^[^@\s<>]+@[^@\s<>]+$"


class EmailConfig(BaseModel):
    """``spec.config`` of the e-mail agent. Secrets only by environment variable name."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    ca_file: str | None = Field(default=None, description="CA bundle for a private relay")
    username: str | None = None
    password_env: str | None = None
    from_address: str | None = Field(default=None, pattern=_ADDRESS)
    from_name: str = ""
    to: list[str] = Field(default_factory=list)
    reply_to: str | None = Field(default=None, pattern=_ADDRESS)
    subject_prefix: str = ""
    greeting: str = "Hello,"
    sign_off: str = "Thanks for reading."
    footer: str = ""
    base_url: str | None = Field(default=None, description="site root; link = base/slug/")
    timeout_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> EmailConfig:
        for address in self.to:
            if "@" not in address or any(c in address for c in " <>,"):
                raise ValueError(f"to: {address!r} is not an e-mail address")
        if self.smtp_host and not (self.from_address and self.to):
            raise ValueError("smtp_host is set, so from_address and to are required")
        if self.password_env and not self.username:
            raise ValueError("password_env is set, so username is required")
        return self


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")

    article: dict[str, Any]
    subject: str | None = Field(default=None, min_length=1, max_length=200)
    url: str | None = None


def render_email(
    article: Article, config: EmailConfig, subject: str, url: str | None
) -> tuple[str, str]:
    """The text and HTML bodies of the campaign mail."""
    points = [t for level, t in headings(article.body) if level == 2][:6]
    context = {
        "article": article,
        "subject": subject,
        "preheader": article.meta_description,
        "summary": first_paragraph(article.body) or article.meta_description,
        "points": points,
        "url": url,
        "greeting": config.greeting,
        "sign_off": config.sign_off,
        "footer": config.footer,
        "body_text": plain_text(article.body).strip(),
        "body_html": render_html(article.body) if not url else "",
    }
    env = templates()
    text = env.get_template("email.txt.j2").render(**context)
    html = env.get_template("email.html.j2").render(**context)
    return text, html


class EmailAgent(BaseAgent):
    """Renders a campaign mail from an article and sends it when SMTP is configured."""

    config_model: ClassVar[type[BaseModel] | None] = EmailConfig
    input_model: ClassVar[type[BaseModel] | None] = _Input
    # execute_task hands it the article of the content generator it depends on.
    consumes = (Consumes("article", "generate_content", "article"),)
    config: EmailConfig

    def __init__(self) -> None:
        super().__init__(agent_name="Email Agent", version="2.0.0")
        self.config = EmailConfig()

    async def initialize(self) -> bool:
        templates().get_template("email.txt.j2")
        templates().get_template("email.html.j2")
        self.status = AgentStatus.HEALTHY
        return True

    def _password(self) -> str | None:
        name = self.config.password_env
        if not name:
            return None
        value = os.environ.get(name)
        if not value:
            raise PermanentError(f"password_env names {name}, which is not set")
        return value

    def headline(self, result: dict[str, Any]) -> str | None:
        status = result.get("status")
        return status if isinstance(status, str) else None

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        try:
            given = _Input.model_validate(kwargs)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            raise PermanentError(f"email_campaign: invalid input: {problems}") from None
        article = parse_article(given.article)
        cfg = self.config
        url = given.url
        if not url and cfg.base_url and article.slug:
            url = f"{cfg.base_url.rstrip('/')}/{article.slug}/"
        subject = f"{cfg.subject_prefix}{given.subject or article.title}"
        text, html = render_email(article, cfg, subject, url)
        result: dict[str, Any] = {
            "subject": subject,
            "from": cfg.from_address,
            "to": cfg.to,
            "text": text,
            "html": html,
        }
        if not cfg.smtp_host:
            return {**result, "sent": False, "status": NOT_CONFIGURED}
        # Inside a workflow step the mail is keyed by run and step: a re-run after a kill
        # reports the delivery its first attempt made instead of sending it again.
        step = current_step()
        key = step.key("email_campaign", 32) if step else None
        sent_mail = self._sent_mail()
        # The store is read and written off the event loop, as the SMTP exchange is: a
        # busy SQLite file may hold a query for seconds.
        earlier = await asyncio.to_thread(sent_mail.get, key) if key and sent_mail else None
        if earlier is not None:
            return {
                **result,
                "sent": True,
                "status": "sent",
                "message_id": earlier.message_id,
                "refused": list(earlier.refused),
                "already_sent": True,
            }
        password = self._password()
        message = self._message(subject, text, html, key)
        refused = sorted(await asyncio.to_thread(self._send, message, password))
        if key and sent_mail:
            sent = SentMail(key, message["Message-ID"], tuple(refused), self.clock.now())
            await asyncio.to_thread(sent_mail.record, sent)
            failpoints.hit("email.recorded")
        return {
            **result,
            "sent": True,
            "status": "sent",
            "message_id": message["Message-ID"],
            "refused": refused,
        }

    def _sent_mail(self) -> SentMailStore | None:
        """Where deliveries are recorded: the state store, when the agent is bound to one."""
        engine = self.context.engine
        return SqlSentMail(engine) if engine is not None else None

    def _message(self, subject: str, text: str, html: str, key: str | None) -> EmailMessage:
        cfg = self.config
        sender = cfg.from_address or ""
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = f"{cfg.from_name} <{sender}>" if cfg.from_name else sender
        message["To"] = ", ".join(cfg.to)
        if cfg.reply_to:
            message["Reply-To"] = cfg.reply_to
        message["Date"] = formatdate(self.clock.now(), usegmt=True)
        domain = sender.rsplit("@", 1)[-1]
        # Derived from the step key when there is one: a duplicate is recognisable as such.
        message["Message-ID"] = f"<{key}@{domain}>" if key else make_msgid(domain=domain)
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message

    def _send(self, message: EmailMessage, password: str | None) -> dict[str, Any]:
        """Deliver through the configured server; returns the refused recipients."""
        cfg = self.config
        host = cfg.smtp_host or ""
        where = f"SMTP {host}:{cfg.smtp_port}"
        try:
            context = ssl.create_default_context(cafile=cfg.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise PermanentError(f"ca_file {cfg.ca_file!r} cannot be used: {exc}") from None
        try:
            smtp: smtplib.SMTP
            if cfg.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    host, cfg.smtp_port, timeout=cfg.timeout_seconds, context=context
                )
            else:
                smtp = smtplib.SMTP(host, cfg.smtp_port, timeout=cfg.timeout_seconds)
            with smtp:
                if cfg.security == "starttls":
                    smtp.starttls(context=context)
                if cfg.username and password is not None:
                    smtp.login(cfg.username, password)
                refused = smtp.send_message(message)
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"{where} does not support it: {exc}") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(f"{where} refused the login ({exc.smtp_code})") from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentError(
                f"{where} refused every recipient: {sorted(exc.recipients)}"
            ) from None
        except smtplib.SMTPResponseException as exc:
            text = f"{where} answered {exc.smtp_code}: {_decode(exc.smtp_error)}"
            if 400 <= exc.smtp_code < 500:
                raise TemporaryError(text) from None
            raise PermanentError(text) from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentError(
                f"{where}: certificate not trusted: {exc.verify_message}"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TemporaryError(f"{where} failed: {type(exc).__name__}: {exc}") from None
        return dict(refused)


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
