"""The store handle: the one name layers above ``adapters`` use for a SQLAlchemy ``Engine``.

SQLAlchemy is an adapter's business (an import-linter contract keeps it so); the runtime,
the agents and the entry points pass an open store around as ``devskyy.adapters.engine.Engine``
without importing SQLAlchemy themselves. ``adapters.db.open_engine`` opens one.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.engine import make_url


def safe_url(url: str) -> str:
    """``url`` with any password hidden (``***``), for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


__all__ = ["Engine", "safe_url"]
