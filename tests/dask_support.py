"""Helpers of the Dask runner tests: ``distributed`` itself, manifests of ``dask_test_agents``
and their marks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from devskyy.adapters.db import open_engine
from devskyy.adapters.state_store import SqlStateStore
from devskyy.runtime.reconciler import apply_tree

TESTS = Path(__file__).resolve().parent


def import_distributed() -> Any:
    """``distributed``, or a skip of the calling module without it; under CI (``CI`` set),
    where the test extra installs it, its absence fails instead of silently skipping."""
    if not os.environ.get("CI"):
        return pytest.importorskip("distributed")
    try:
        import distributed  # noqa: PLC0415 - an optional extra
    except ImportError as exc:
        pytest.fail(f"Dask tests cannot run: {exc} (pip install -e '.[test]')", pytrace=False)
    return distributed


def local_cluster() -> Any:
    """A LocalCluster (a context manager) of 2 worker processes, one thread each, with
    tests/ importable by the workers and devskyy's worker preload."""
    return import_distributed().LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        env={"PYTHONPATH": str(TESTS)},
        preload=["devskyy.runtime.dask_worker"],
    )


def agent(name: str, config: dict[str, Any], **spec: Any) -> str:
    extra = "".join(f"  {key}: {value}\n" for key, value in spec.items())
    return (
        f"apiVersion: devskyy.dev/v1\nkind: Agent\nmetadata: {{name: {name}}}\nspec:\n"
        f"  module: dask_test_agents:WhereAgent\n  config: {config!r}\n{extra}---\n"
    )


def workflow(name: str, steps: list[str], priority: str = "medium") -> str:
    body = "".join(f"    - {step}\n" for step in steps)
    return (
        f"apiVersion: devskyy.dev/v1\nkind: Workflow\nmetadata: {{name: {name}}}\n"
        f"spec:\n  priority: {priority}\n  steps:\n{body}---\n"
    )


def apply(tmp_path: Path, url: str, text: str) -> None:
    tree = tmp_path / "tree"
    tree.mkdir(exist_ok=True)
    (tree / "all.yaml").write_text(text.rstrip("-\n") + "\n", encoding="utf-8")
    engine = open_engine(url)
    try:
        apply_tree(tree, SqlStateStore(engine))
    finally:
        engine.dispose()


def marks(folder: Path) -> list[tuple[str, int]]:
    """(step, pid) of every attempt that reached the agent, sorted."""
    found = [p.name.split(".") for p in folder.iterdir()]
    return sorted((step, int(pid)) for step, pid, _ in found)
