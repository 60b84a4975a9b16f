"""Regenerate ``tests/data/store-0.1.0.db``: a store written by devskyy 0.1.0.

The migration tests upgrade this file and check that its revisions, runs, keys and audit
chain survive. It must be written by the 0.1.0 code (the schema before any migration), so
the script runs the CLI of a checkout of that version, never the working tree::

    git worktree add --detach /tmp/v010 d15efad      # the last commit of 0.1.0's schema
    .venv/bin/python tests/data/make_store_0_1_0.py --source /tmp/v010 \\
        --out tests/data/store-0.1.0.db
    git worktree remove /tmp/v010

What it holds: three revisions (an apply of the shipped manifests, an edit, a rollback),
an admin key and a revoked analyst key, a finished ``ecommerce_order`` run (orders,
payments, ledger rows) and a dry-run ``scan_and_fix`` run over the sample project, and
the audit chain those commands wrote. ``tests/test_migrations.py`` reads the expected
counts from the file itself, so a regenerated store needs no test edits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path


def _devskyy(source: Path, work: Path, store: Path, *args: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": str(source),
        "DEVSKYY_STATE_URL": f"sqlite:///{store}",
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "devskyy.cli", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"devskyy {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def build(source: Path, out: Path) -> None:
    """Write the 0.1.0 store at ``out`` with the CLI of the checkout at ``source``."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = work / "state.db"
        shutil.copytree(source / "manifests", work / "manifests")
        shutil.copytree(source / "examples" / "sample_project", work / "sample_project")
        _devskyy(source, work, store, "apply", "manifests")
        scanner = work / "manifests" / "agents" / "scanner.yaml"
        edited = scanner.read_text().replace("tier: code\n", 'tier: code\n    edited: "yes"\n', 1)
        scanner.write_text(edited)
        _devskyy(source, work, store, "apply", "manifests")
        _devskyy(source, work, store, "rollback", "1")
        _devskyy(source, work, store, "keys", "create", "ops", "--role", "admin")
        _devskyy(source, work, store, "keys", "create", "reader", "--role", "analyst")
        with sqlite3.connect(store) as db:
            query = "SELECT key_id FROM api_keys WHERE principal = 'reader'"
            (key_id,) = db.execute(query).fetchone()
        _devskyy(source, work, store, "keys", "revoke", str(key_id))
        _devskyy(source, work, store, "run", "ecommerce_order")
        _devskyy(
            source, work, store, "run", "scan_and_fix",
            "-p", "target_path=sample_project", "-p", "dry_run=true",
        )  # fmt: skip
        # One self-contained file (no -wal beside it), compacted.
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        db = sqlite3.connect(store, isolation_level=None)
        try:
            db.execute("VACUUM INTO ?", (str(out),))
        finally:
            db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="a 0.1.0 checkout")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    build(args.source.resolve(), args.out.resolve())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
