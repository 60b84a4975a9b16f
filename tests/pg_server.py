"""A real PostgreSQL for the tests that need one: ``DEVSKYY_TEST_POSTGRES_URL``, or a
throw-away cluster started with the machine's ``initdb``/``pg_ctl`` on 127.0.0.1 (as the
``postgres`` user when the tests run as root, since PostgreSQL refuses to run as root).
Without server binaries (or the psycopg driver) the tests that need it are skipped on a
developer's machine and fail under CI (``CI`` set), where ``scripts/test-deps`` installs them.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from glob import glob
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str]) -> None:
    subprocess.run(_as_server_user(cmd), check=True, capture_output=True, timeout=60)


def _unavailable(reason: str) -> NoReturn:
    """Skip locally; under CI a missing server is a failure, never a silent skip."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests cannot run: {reason} (scripts/test-deps installs it)")
    pytest.skip(reason)


def _server_binary(name: str) -> str | None:
    """``name`` on PATH, else in Debian's versioned folder (not on PATH by default)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a server the tests may create databases in."""
    if importlib.util.find_spec("psycopg") is None:
        _unavailable("the psycopg driver is not installed")
    given = os.environ.get("DEVSKYY_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    initdb, pg_ctl = _server_binary("initdb"), _server_binary("pg_ctl")
    if not initdb or not pg_ctl:
        _unavailable("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no postgres user to run the server")
        if not shutil.which("runuser"):
            _unavailable("running as root without runuser to start PostgreSQL as postgres")
    base = Path(tempfile.mkdtemp(prefix="devskyy-pg-"))
    data, sockets = base / "data", base / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    _run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c max_connections=200"
    _run([pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(base / "log"), "start"])
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        stop = [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_server_user(stop), capture_output=True, timeout=60, check=False)
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server (dropped afterwards); yields its URL."""
    name = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The store of a test parametrized over backends: ``postgres`` or ``postgresql``
    (``request.param``) is a fresh database on the session's PostgreSQL, any other a SQLite
    file in ``tmp_path``."""
    if request.param not in ("postgres", "postgresql"):
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    with fresh_database(request.getfixturevalue("server_url")) as url:
        yield url
