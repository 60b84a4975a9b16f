"""``devskyy worker`` and the ``--runner``/``--scheduler`` options of run, serve and watch.

``devskyy worker tcp://HOST:PORT [dask worker options]`` replaces itself with exactly
``dask worker tcp://HOST:PORT --preload devskyy.runtime.dask_worker [options]`` (the
same Python, so the same devskyy and agents): a stock Dask worker that runs devskyy's
step attempts (docs/scaling.md). Options after the address go to ``dask worker``
unchanged (``--nworkers``, ``--nthreads``, ``--resources "gpu=1"``, ``--no-nanny``...).

``--runner local|dask`` (``DEVSKYY_RUNNER``) picks the step runner; ``--scheduler
tcp://HOST:PORT`` (``DEVSKYY_SCHEDULER``) names an existing Dask scheduler and implies
``--runner dask``; ``--runner dask`` without one starts a LocalCluster of one worker
process per core for the life of the command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from devskyy.cli._common import error_boundary, fatal
from devskyy.extras import missing_extra_message

F = TypeVar("F", bound=Callable[..., Any])
WORKER_MODULE = "devskyy.runtime.dask_worker"


@dataclass(frozen=True)
class RunnerChoice:
    """The step runner a command runs attempts with."""

    runner: str = "local"
    scheduler: str | None = None

    @classmethod
    def of(cls, runner: str, scheduler: str | None) -> RunnerChoice:
        return cls("dask" if scheduler else runner, scheduler or None)

    def open_options(self) -> dict[str, Any]:
        """Keyword arguments of ``open_system``."""
        return {"runner": self.runner, "scheduler": self.scheduler}


def runner_options(fn: F) -> F:
    """``--runner`` and ``--scheduler`` (the command gets ``runner`` and ``scheduler``)."""
    fn = click.option(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:PORT",
        envvar="DEVSKYY_SCHEDULER",
        help="An existing Dask scheduler (implies --runner dask).",
    )(fn)
    return click.option(
        "--runner",
        type=click.Choice(["local", "dask"]),
        default="local",
        show_default=True,
        envvar="DEVSKYY_RUNNER",
        help="Where step attempts run: this process, or Dask workers (without "
        "--scheduler: a LocalCluster of one worker process per core).",
    )(fn)


def dask_worker_argv(scheduler: str, extra: tuple[str, ...]) -> list[str]:
    """The exact ``dask worker`` command line ``devskyy worker`` runs."""
    return [
        sys.executable,
        "-m",
        "distributed.cli.dask_worker",
        scheduler,
        "--preload",
        WORKER_MODULE,
        *extra,
    ]


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("scheduler", metavar="tcp://HOST:PORT")
@click.argument("dask_options", nargs=-1, type=click.UNPROCESSED)
@error_boundary
def worker(scheduler: str, dask_options: tuple[str, ...]) -> None:
    """Start a Dask worker for devskyy steps (dask worker ... --preload devskyy...)."""
    try:
        import distributed.cli.dask_worker  # noqa: F401, PLC0415 - the extra is there
    except ModuleNotFoundError as exc:
        fatal(f"error: {missing_extra_message(exc) or exc}")
        raise SystemExit(1) from None
    argv = dask_worker_argv(scheduler, dask_options)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)  # noqa: S606 - this very Python, a fixed module
