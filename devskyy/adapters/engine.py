"""The store handle: the one name layers above ``adapters`` use for a SQLAlchemy ``Engine``.

SQLAlchemy is an adapter's business (an import-linter contract keeps it so); the runtime,
the agents and the entry points pass an open store around as ``devskyy.adapters.engine.Engine``
without importing SQLAlchemy themselves. ``adapters.db.open_engine`` opens one.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


def safe_url(url: str) -> str:
    """``url`` with any password hidden (``***``), for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


def url_problem(url: str) -> str | None:
    """Why ``url`` can never open a store (malformed, unknown or missing driver), or None.

    Parses the URL and loads the driver without connecting.
    """
    try:
        create_engine(url).dispose()
    except (ArgumentError, ImportError, ValueError) as exc:
        return str(exc).strip().splitlines()[0] or type(exc).__name__
    return None


__all__ = ["Engine", "safe_url", "url_problem"]
