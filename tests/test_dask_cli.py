"""``devskyy worker`` and the runner options, without a cluster (fast)."""

from __future__ import annotations

import asyncio
import sys

import pytest
from click.testing import CliRunner

from devskyy.cli import main
from devskyy.cli.worker import RunnerChoice, dask_worker_argv
from devskyy.model.manifests import Priority
from devskyy.runtime.dask_runner import (
    RunnerUnavailable,
    absolute_state_url,
    dask_priority,
    start_dask,
)


def test_worker_runs_exactly_dask_worker_with_the_devskyy_preload() -> None:
    argv = dask_worker_argv("tcp://10.0.0.5:8786", ("--nthreads", "1", "--resources", "gpu=1"))
    assert argv == [
        sys.executable,
        "-m",
        "distributed.cli.dask_worker",
        "tcp://10.0.0.5:8786",
        "--preload",
        "devskyy.runtime.dask_worker",
        "--nthreads",
        "1",
        "--resources",
        "gpu=1",
    ]


def test_worker_without_the_extra_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed.cli.dask_worker", None)
    result = CliRunner().invoke(main, ["worker", "tcp://127.0.0.1:8786"])
    assert result.exit_code == 1
    assert result.output == (
        "error: 'distributed' is not installed: pip install 'devskyy[distributed]' "
        "(the Dask step runner, --runner dask)\n"
    )


def test_a_scheduler_implies_the_dask_runner() -> None:
    assert RunnerChoice.of("local", None) == RunnerChoice("local", None)
    assert RunnerChoice.of("dask", None) == RunnerChoice("dask", None)
    assert RunnerChoice.of("local", "tcp://h:8786") == RunnerChoice("dask", "tcp://h:8786")


def test_an_unknown_runner_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSKYY_RUNNER", "ray")
    result = CliRunner().invoke(main, ["run", "anything"])
    assert result.exit_code == 2
    assert "Invalid value for '--runner': 'ray' is not one of 'local', 'dask'." in result.output


def test_workflow_priority_maps_to_dask_priority_highest_first() -> None:
    assert [dask_priority(p) for p in Priority] == [3, 2, 1, 0]


def test_a_relative_sqlite_path_is_made_absolute_for_workers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.chdir(str(tmp_path))
    assert absolute_state_url("sqlite:///state.db") == f"sqlite:///{tmp_path}/state.db"
    assert absolute_state_url("sqlite:////abs/state.db") == "sqlite:////abs/state.db"
    assert absolute_state_url("sqlite:///:memory:") == "sqlite:///:memory:"
    url = "postgresql+psycopg://u@db/devskyy"
    assert absolute_state_url(url) == url


def test_an_unreachable_scheduler_is_one_error_naming_it() -> None:
    async def connect() -> None:
        await start_dask("tcp://127.0.0.1:9", timeout=0.5)

    with pytest.raises(RunnerUnavailable) as caught:
        asyncio.run(connect())
    assert str(caught.value).startswith("cannot reach the Dask scheduler tcp://127.0.0.1:9: ")
    assert "\n" not in str(caught.value)
