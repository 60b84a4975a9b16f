"""The store handle: the one name layers above ``adapters`` use for a SQLAlchemy ``Engine``.

SQLAlchemy is an adapter's business (an import-linter contract keeps it so); the runtime,
the agents and the entry points pass an open store around as ``devskyy.adapters.engine.Engine``
without importing SQLAlchemy themselves. ``adapters.db.open_engine`` opens one: for a
plain SQLite file at head a ``SqliteEngine`` that makes SQLAlchemy's engine only on first
use (``adapters.sqlite_engine``), so importing this module does not import SQLAlchemy;
``Engine`` itself is SQLAlchemy's class, imported when first asked for (PEP 562), and
``is_engine`` tells either kind of engine from other values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devskyy.adapters.sqlite_engine import is_engine
from devskyy.adapters.store_url import shown_url

if TYPE_CHECKING:
    from sqlalchemy import Engine


def __getattr__(name: str) -> Any:
    if name == "Engine":
        from sqlalchemy import Engine  # noqa: PLC0415 - see the module docstring

        return Engine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def safe_url(url: str) -> str:
    """``url`` with any password hidden (``***``), for logs and messages."""
    return shown_url(url)


__all__ = ["Engine", "is_engine", "safe_url"]
