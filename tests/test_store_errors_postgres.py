"""A read-only PostgreSQL role (issue 19.8): reads work, writes are one ``error:`` line
that says what to do, without SQL, for ``apply``, ``keys create`` and ``run``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pg_server import fresh_database
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from test_store_errors import COMMANDS, READ_ONLY_FIX, one_error_line

from devskyy.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def reader_url(server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    with fresh_database(server_url) as url:
        runner = CliRunner()
        assert runner.invoke(main, ["--state", url, "apply", "manifests"]).exit_code == 0
        assert runner.invoke(main, ["--state", url, "run", "ecommerce_order"]).exit_code == 0
        database = make_url(url).database
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP ROLE IF EXISTS devskyy_reader"))
            conn.execute(text("CREATE ROLE devskyy_reader LOGIN"))
            conn.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO devskyy_reader'))
            conn.execute(text("GRANT USAGE ON SCHEMA public TO devskyy_reader"))
            conn.execute(text("GRANT SELECT ON ALL TABLES IN SCHEMA public TO devskyy_reader"))
        try:
            reader = make_url(url).set(username="devskyy_reader")
            yield reader.render_as_string(hide_password=False)
        finally:
            with engine.connect() as conn:
                conn.execute(text("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM devskyy_reader"))
                conn.execute(text("REVOKE ALL ON SCHEMA public FROM devskyy_reader"))
                conn.execute(text(f'REVOKE ALL ON DATABASE "{database}" FROM devskyy_reader'))
            engine.dispose()


def test_a_read_only_role_reads_and_refuses_writes_in_one_line(
    reader_url: str, tmp_path: Path
) -> None:
    scanner = tmp_path / "manifests" / "agents" / "scanner.yaml"
    scanner.write_text(scanner.read_text().replace("tier: code", "tier: code2"))
    runner = CliRunner()
    for name, args in COMMANDS.items():
        result = runner.invoke(main, ["--state", reader_url, *args])
        if name in ("get", "plan", "history", "runs list"):
            assert result.exit_code in (0, 2), (name, result.output)
            assert "error" not in result.output
            continue
        assert result.exit_code == 1, (name, result.output)
        line = one_error_line(result.output)
        assert line.startswith(f"error: the state store {reader_url} is read-only ("), name
        assert "permission denied for" in line
        assert line.endswith(f"): {READ_ONLY_FIX}"), name
