"""The e-mail agent: rendered from templates, sent to a local aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.db import open_engine
from devskyy.agents.email import NOT_CONFIGURED, EmailAgent, EmailConfig
from devskyy.errors import PermanentError, TemporaryError
from devskyy.runtime.agent import AgentContext
from devskyy.runtime.step_context import StepRef, in_step

PASSWORD = "smtp-pass-SECRET-42"
ARTICLE = {
    "title": "Capsule Wardrobe Basics",
    "slug": "capsule-wardrobe-basics",
    "meta_description": "Build a small wardrobe that works.",
    "body": "# Capsule Wardrobe Basics\n\nFewer, better clothes save time & money.\n\n"
    "## Start Small\n\nPick ten pieces.\n\n## Keep It Going\n\nReview each season. <b>x</b>\n",
    "keywords": ["capsule wardrobe"],
}


@dataclass
class Mailbox:
    """The aiosmtpd handler: keeps what it received, refuses some recipients, can stall."""

    received: list[Envelope] = field(default_factory=list)
    data_reply: str = "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply.startswith("250"):
            self.received.append(envelope)
        return self.data_reply


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, auth: bool = False, **controller_kwargs: Any) -> None:
        self.mailbox = Mailbox()
        self.logins: list[tuple[bytes, bytes]] = []
        kwargs: dict[str, Any] = dict(controller_kwargs)
        if auth:
            kwargs |= {"authenticator": self._auth, "auth_require_tls": False}
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port, **kwargs)

    def _auth(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        # handled=False: let aiosmtpd answer 535 itself on a failure.
        return AuthResult(success=data.password == PASSWORD.encode(), handled=False)


@pytest.fixture
def smtp() -> Iterator[Server]:
    server = Server()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def smtp_auth() -> Iterator[Server]:
    server = Server(auth=True)
    server.controller.start()
    yield server
    server.controller.stop()


def make(config: dict[str, Any]) -> EmailAgent:
    agent = EmailAgent()
    agent.bind(AgentContext(name="email", config=config, clock=FakeClock(1_700_000_000.0)))
    assert asyncio.run(agent.initialize()) is True
    return agent


def send(agent: EmailAgent, **extra: Any) -> dict[str, Any]:
    return asyncio.run(agent.execute_core_function(article=ARTICLE, **extra))


def smtp_config(server: Server, **extra: Any) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port,
        "security": "none",
        "from_address": "news@shop.example",
        "from_name": "Shop News",
        "to": ["ada@example.com", "bob@example.com"],
        **extra,
    }


def test_without_smtp_the_mail_is_rendered_only() -> None:
    out = send(make({"footer": "You subscribed at shop.example."}))
    assert out["sent"] is False
    assert out["status"] == NOT_CONFIGURED == "not sent: SMTP not configured"
    assert out["subject"] == "Capsule Wardrobe Basics"
    text = out["text"]
    assert text.startswith("Hello,\n\nCapsule Wardrobe Basics\n=======================\n")
    assert "Fewer, better clothes save time & money." in text
    assert "- Start Small\n- Keep It Going\n" in text
    assert "Pick ten pieces." in text  # no URL: the whole article is in the mail
    assert text.rstrip().endswith("--\nYou subscribed at shop.example.")
    html = out["html"]
    assert "<h1 style=" in html
    assert "Fewer, better clothes save time &amp; money." in html  # autoescaped
    assert "&lt;b&gt;x&lt;/b&gt;" in html  # raw HTML in the article is escaped
    assert '<li style="line-height:1.6;">Start Small</li>' in html


def test_with_a_url_the_mail_links_to_the_article() -> None:
    out = send(make({"base_url": "https://shop.example/blog", "subject_prefix": "[News] "}))
    assert out["subject"] == "[News] Capsule Wardrobe Basics"
    assert (
        "Read the full article: https://shop.example/blog/capsule-wardrobe-basics/" in out["text"]
    )
    assert "Pick ten pieces." not in out["text"]
    assert 'href="https://shop.example/blog/capsule-wardrobe-basics/"' in out["html"]
    explicit = send(make({}), url="https://x.example/a", subject="Our new guide")
    assert explicit["subject"] == "Our new guide"
    assert "https://x.example/a" in explicit["text"]


def test_sent_over_smtp_to_every_recipient(smtp: Server) -> None:
    out = send(make(smtp_config(smtp, reply_to="help@shop.example")))
    assert out["sent"] is True
    assert out["status"] == "sent"
    assert out["refused"] == []
    (envelope,) = smtp.mailbox.received
    assert envelope.mail_from == "news@shop.example"
    assert envelope.rcpt_tos == ["ada@example.com", "bob@example.com"]
    assert isinstance(envelope.content, bytes)
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"] == "Capsule Wardrobe Basics"
    assert message["From"] == "Shop News <news@shop.example>"
    assert message["To"] == "ada@example.com, bob@example.com"
    assert message["Reply-To"] == "help@shop.example"
    assert email.utils.parsedate_to_datetime(message["Date"]).timestamp() == 1_700_000_000
    assert message["Message-ID"] == out["message_id"]
    assert message["Message-ID"].endswith("@shop.example>")
    assert message.get_content_type() == "multipart/alternative"
    # SMTP carries CRLF line ends; compare the text itself.
    parts = {
        p.get_content_type(): p.get_content().replace("\r\n", "\n") for p in message.iter_parts()
    }
    assert parts["text/plain"] == out["text"]
    assert parts["text/html"] == out["html"]


def test_login_uses_the_password_from_the_named_env_var(
    smtp_auth: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    config = smtp_config(smtp_auth, username="mailer", password_env="SMTP_PASSWORD")
    out = send(make(config))
    assert out["sent"] is True
    assert smtp_auth.logins == [(b"mailer", PASSWORD.encode())]
    assert PASSWORD not in repr(out)
    assert len(smtp_auth.mailbox.received) == 1


def test_a_wrong_password_is_permanent_and_not_shown(
    smtp_auth: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "wrong-SECRET")
    config = smtp_config(smtp_auth, username="mailer", password_env="SMTP_PASSWORD")
    with pytest.raises(PermanentError) as err:
        send(make(config))
    assert str(err.value) == f"SMTP 127.0.0.1:{smtp_auth.port} refused the login (535)"
    assert smtp_auth.mailbox.received == []


def test_a_missing_password_env_var_is_named(smtp: Server) -> None:
    config = smtp_config(smtp, username="mailer", password_env="NO_SUCH_PASSWORD")
    with pytest.raises(PermanentError, match=r"^password_env names NO_SUCH_PASSWORD, which is not"):
        send(make(config))
    assert smtp.mailbox.received == []


def test_refused_recipients_are_reported_or_fatal(smtp: Server) -> None:
    out = send(make(smtp_config(smtp, to=["ada@example.com", "nobody@example.com"])))
    assert out["refused"] == ["nobody@example.com"]
    assert smtp.mailbox.received[0].rcpt_tos == ["ada@example.com"]
    with pytest.raises(PermanentError) as err:
        send(make(smtp_config(smtp, to=["nobody@example.com"])))
    assert str(err.value) == (
        f"SMTP 127.0.0.1:{smtp.port} refused every recipient: ['nobody@example.com']"
    )


def test_a_4xx_reply_is_temporary_and_5xx_permanent(smtp: Server) -> None:
    smtp.mailbox.data_reply = "451 4.3.0 try again later"
    with pytest.raises(TemporaryError) as err:
        send(make(smtp_config(smtp)))
    assert str(err.value) == f"SMTP 127.0.0.1:{smtp.port} answered 451: 4.3.0 try again later"
    smtp.mailbox.data_reply = "554 5.7.1 rejected"
    with pytest.raises(PermanentError, match=r"answered 554: 5\.7\.1 rejected$"):
        send(make(smtp_config(smtp)))


def test_an_unreachable_server_is_temporary() -> None:
    port = free_port()
    config = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "security": "none",
        "from_address": "a@b.example",
        "to": ["c@d.example"],
        "timeout_seconds": 5,
    }
    with pytest.raises(TemporaryError, match=rf"^SMTP 127\.0\.0\.1:{port} failed: "):
        send(make(config))


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="smtp_host is set, so from_address and to are required"):
        EmailConfig(smtp_host="mail.example")
    with pytest.raises(ValueError, match="password_env is set, so username is required"):
        EmailConfig(password_env="X")
    with pytest.raises(ValueError, match="'not an address' is not an e-mail address"):
        EmailConfig(to=["not an address"])
    assert EmailConfig.model_validate({"smtpHost": "h", "fromAddress": "a@b", "to": ["c@d"]})


def test_bad_input_is_refused() -> None:
    with pytest.raises(PermanentError) as err:
        asyncio.run(make({}).execute_core_function(article=ARTICLE, recipients=["x@y"]))
    assert str(err.value) == (
        "email_campaign: invalid input: recipients: Extra inputs are not permitted"
    )


# -- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made by the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def smtp_tls(certificate: tuple[Path, Path]) -> Iterator[Server]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = Server(tls_context=context, require_starttls=True)
    server.controller.start()
    yield server
    server.controller.stop()


def test_starttls_with_a_private_ca(smtp_tls: Server, certificate: tuple[Path, Path]) -> None:
    config = smtp_config(smtp_tls, security="starttls", ca_file=str(certificate[0]))
    assert send(make(config))["status"] == "sent"
    assert len(smtp_tls.mailbox.received) == 1


def test_an_untrusted_certificate_is_permanent(smtp_tls: Server) -> None:
    with pytest.raises(PermanentError) as err:
        send(make(smtp_config(smtp_tls, security="starttls")))
    assert str(err.value).startswith(f"SMTP 127.0.0.1:{smtp_tls.port}: certificate not trusted: ")
    assert smtp_tls.mailbox.received == []


def test_starttls_refused_by_a_plain_server_is_permanent(smtp: Server) -> None:
    with pytest.raises(PermanentError, match=r"does not support it: STARTTLS extension"):
        send(make(smtp_config(smtp, security="starttls")))


def test_a_missing_ca_file_is_permanent(smtp: Server, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(PermanentError, match=rf"^ca_file '{missing}' cannot be used: "):
        send(make(smtp_config(smtp, ca_file=str(missing))))


def test_a_step_re_run_reports_the_first_delivery_instead_of_sending_again(
    smtp: Server, tmp_path: Path
) -> None:
    # Interrupted steps are idempotent: inside a workflow step the mail is keyed by run and
    # step, recorded in the store once the server accepted it; a re-run (after a kill between
    # the delivery and the step's success) finds the record and sends nothing.
    engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        agent = EmailAgent()
        agent.bind(
            AgentContext(
                name="email",
                config=smtp_config(smtp),
                clock=FakeClock(1_700_000_000.0),
                engine=engine,
            )
        )
        assert asyncio.run(agent.initialize()) is True

        async def in_step_send(run_id: str) -> dict[str, Any]:
            with in_step(run_id, "email"):
                return await agent.execute_core_function(article=ARTICLE)

        first = asyncio.run(in_step_send("run-1"))
        again = asyncio.run(in_step_send("run-1"))
        other = asyncio.run(in_step_send("run-2"))
        assert len(smtp.mailbox.received) == 2  # run-1 once, run-2 once
        assert again["message_id"] == first["message_id"]
        assert again["already_sent"] is True
        assert "already_sent" not in first
        assert other["message_id"] != first["message_id"]
        key = StepRef("run-1", "email").key("email_campaign", 32)
        assert first["message_id"] == f"<{key}@shop.example>"
        received = email.message_from_bytes(
            smtp.mailbox.received[0].content, policy=email.policy.default
        )
        assert received["Message-ID"] == first["message_id"]
    finally:
        engine.dispose()


def test_outside_a_step_every_call_sends(smtp: Server) -> None:
    agent = make(smtp_config(smtp))
    first, second = send(agent), send(agent)
    assert len(smtp.mailbox.received) == 2
    assert first["message_id"] != second["message_id"]
