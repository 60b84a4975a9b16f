"""Push webhooks from git hosts (pure): who sent it, is it genuine, is it a push to watch.

Each host proves a request with the shared secret in its own way:

* GitHub: ``X-Hub-Signature-256: sha256=<hex>``, HMAC-SHA256 of the raw body;
* Gitea and Forgejo: ``X-Gitea-Signature`` / ``X-Forgejo-Signature: <hex>``, the same HMAC;
* GitLab: ``X-Gitlab-Token: <secret>``, the secret itself.

Every comparison is constant-time (``hmac.compare_digest``); the secret and the signatures
never appear in a verdict. ``classify`` then reads the event header and the payload's
``ref``: a push to the watched branch triggers a pass, anything else (a ping, another
branch, another event) is acknowledged and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """Whether a request is genuine, and the host it claims to come from."""

    ok: bool
    host: str | None
    reason: str  # a stable code: verified, missing_signature, bad_signature


_HMAC_HEADERS = (
    ("x-hub-signature-256", "github", "sha256="),
    ("x-forgejo-signature", "forgejo", ""),
    ("x-gitea-signature", "gitea", ""),
)


def verify(headers: Mapping[str, str], body: bytes, secret: bytes) -> Verdict:
    """Check the request's signature (or GitLab's token) against ``secret``.

    ``headers`` must be case-insensitive or lower-case. The first signature header present
    decides; a request that carries none is ``missing_signature``.
    """
    for name, host, prefix in _HMAC_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        expected = prefix + hmac.new(secret, body, hashlib.sha256).hexdigest()
        good = hmac.compare_digest(value.strip().lower().encode(), expected.encode())
        return Verdict(good, host, "verified" if good else "bad_signature")
    token = headers.get("x-gitlab-token")
    if token is not None:
        good = hmac.compare_digest(token.encode(), secret)
        return Verdict(good, "gitlab", "verified" if good else "bad_signature")
    return Verdict(False, None, "missing_signature")


_EVENT_HEADERS = {
    "github": "x-github-event",
    "gitea": "x-gitea-event",
    "forgejo": "x-forgejo-event",
    "gitlab": "x-gitlab-event",
}
_PUSH = {"push", "push hook"}


@dataclass(frozen=True)
class Event:
    """What a genuine request asks for: ``push`` (a pass) or ``ignored``, and why."""

    action: str  # push | ignored
    event: str
    ref: str | None
    reason: str = ""


def classify(host: str, headers: Mapping[str, str], body: bytes, branch: str) -> Event:
    """A push to ``refs/heads/<branch>`` is a ``push``; anything else is ``ignored``."""
    event = headers.get(_EVENT_HEADERS.get(host, ""), "") or ""
    ref: str | None = None
    try:
        payload = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError):
        payload = {}
    if isinstance(payload, dict) and isinstance(payload.get("ref"), str):
        ref = payload["ref"]
    if event.strip().lower() not in _PUSH:
        return Event("ignored", event, ref, f"not a push event ({event or 'none'})")
    wanted = f"refs/heads/{branch}"
    if ref is not None and ref != wanted:
        return Event("ignored", event, ref, f"a push to {ref}; this daemon follows {wanted}")
    return Event("push", event, ref)


__all__ = ["Event", "Verdict", "classify", "verify"]
