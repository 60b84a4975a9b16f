"""Optional parts of devskyy and the pip extra that brings each one.

``pip install devskyy`` installs what ``validate``, ``plan``, ``apply``, ``get`` and the
other store commands need, so a CI job that only checks and applies manifests stays
small. The HTTP server, the watch daemon, the built-in agents and PostgreSQL come with
extras (``devskyy[all]`` is serve, watch and agents). When an optional module is missing, the one
place that meets the ``ModuleNotFoundError`` turns it into one line naming the extra
(``missing_extra_message``) instead of a traceback. ``tests/test_packaging.py`` holds
this table and ``pyproject.toml`` to each other.
"""

from __future__ import annotations

# Top-level import name -> the extra that installs it.
EXTRA_OF_MODULE: dict[str, str] = {
    "fastapi": "serve",
    "starlette": "serve",
    "uvicorn": "serve",
    "prometheus_client": "serve",
    "watchdog": "watch",
    "croniter": "watch",
    "anthropic": "agents",
    "jinja2": "agents",
    "markdown": "agents",
    "pyphen": "agents",
    "httpx": "agents",
    "ruff": "agents",
    "bandit": "agents",
    "libcst": "agents",
    "detect_secrets": "agents",
    "pathspec": "agents",
    "packaging": "agents",
    "psycopg": "postgres",
    "dask": "distributed",
    "distributed": "distributed",
    "bokeh": "distributed",
}

# What each extra is for, in the words of the error message.
PURPOSE: dict[str, str] = {
    "serve": "the HTTP API and /metrics",
    "watch": "the watch daemon",
    "agents": "the built-in agents",
    "postgres": "a PostgreSQL store",
    "distributed": "the Dask step runner, --runner dask",
}


def extra_for(module: str | None) -> str | None:
    """The extra that provides ``module`` (``fastapi.routing`` -> ``serve``), if any."""
    if not module:
        return None
    return EXTRA_OF_MODULE.get(module.split(".", 1)[0])


def missing_extra_message(exc: BaseException) -> str | None:
    """One line for a missing optional module, or None when ``exc`` is something else.

    ``ModuleNotFoundError`` is followed through ``__cause__`` and ``__context__`` because
    the loaders that import agent code wrap it in their own error.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ModuleNotFoundError):
            name = current.name or ""
            extra = extra_for(name)
            if extra is not None:
                return (
                    f"{name.split('.')[0]!r} is not installed: "
                    f"pip install 'devskyy[{extra}]' ({PURPOSE[extra]})"
                )
        current = current.__cause__ or current.__context__
    return None


def import_failure(module_name: str, exc: BaseException) -> str:
    """Why an agent's module ``module_name`` cannot be imported, in one line.

    A missing extra names it; a missing top-level package (the user's own, not on the path
    of the devskyy process: its console script does not add the current folder) says how
    to put it there; anything else is Python's own words.
    """
    hint = missing_extra_message(exc)
    if hint is not None:
        return hint
    text = f"{type(exc).__name__}: {exc}"
    top = module_name.split(".", 1)[0]
    if isinstance(exc, ModuleNotFoundError) and exc.name == top:
        text += f" (put the folder that holds {top!r} on PYTHONPATH, or pip install its project)"
    return text
