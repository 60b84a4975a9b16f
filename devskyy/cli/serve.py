"""``devskyy serve``: the HTTP API (FastAPI on uvicorn) over the runtime of one state store.

Translation only: options → ``ApiSettings``; ``--manifests PATH`` is applied first
(validated, one revision, as ``devskyy apply``); then the runtime is opened with its
agents started, the app built with ``devskyy.api.create_app`` and served. On SIGTERM
or Ctrl-C uvicorn stops taking requests, background runs get ``--grace`` seconds, the
rest are recorded as cancelled (resumable), and the exit code is 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

import click

from devskyy.adapters.db import open_engine
from devskyy.adapters.logs import configure
from devskyy.adapters.state_store import SqlStateStore
from devskyy.cli._common import (
    CliContext,
    api_settings,
    error_boundary,
    listen,
    rate_limit_option,
    socket_url,
    workspace_option,
)

log = logging.getLogger("devskyy.serve")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--manifests",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Apply this manifest tree before serving.",
)
@workspace_option
@rate_limit_option
@click.option(
    "--grace", default=30.0, show_default=True, help="Seconds in-flight runs get on shutdown."
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
@error_boundary
def serve(
    obj: CliContext,
    host: str,
    port: int,
    manifests: Path | None,
    workspaces: tuple[Path, ...],
    rate_limit: int | None,
    grace: float,
    log_format: str,
) -> None:
    """Serve the HTTP API (every route but /healthz needs an API key)."""
    configure(log_format)
    if manifests is not None:
        _apply(obj.url(), manifests)
    settings = api_settings(workspaces, rate_limit)
    asyncio.run(_serve(obj.url(), host, port, settings, grace))


def _apply(url: str, tree: Path) -> None:
    from devskyy.runtime.reconciler import Reconciler  # noqa: PLC0415

    engine = open_engine(url)
    try:
        # The revision commits with its audit event (one transaction).
        result = Reconciler(SqlStateStore(engine), audit_actor="serve").apply_tree(tree)
    finally:
        engine.dispose()
    number = result.revision.number if result.revision else result.live_revision
    log.info("manifests applied", extra={"fields": {"path": str(tree), "revision": number}})


async def _serve(url: str, host: str, port: int, settings: Any, grace: float) -> None:
    import uvicorn  # noqa: PLC0415

    class _Server(uvicorn.Server):
        # We own SIGTERM/SIGINT: uvicorn would re-raise the signal after shutdown, so
        # the process would die by it instead of exiting 0 after draining the runs.
        def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
            return contextlib.nullcontext()

        def stop(self) -> None:
            self.should_exit = True

    from devskyy.api import create_app  # noqa: PLC0415
    from devskyy.runtime.background import background_of  # noqa: PLC0415
    from devskyy.runtime.system import open_system  # noqa: PLC0415

    sock = listen(host, port)  # before anything starts: a port in use is one error line
    system = await open_system(url)
    try:
        app = create_app(system, settings)
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, server_header=False
        )
        server = _Server(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.stop)
        # Only now that the port is ours is the URL worth printing.
        log.info(
            f"serving on {socket_url(sock)}",
            extra={"fields": {"url": socket_url(sock), "pid": os.getpid()}},
        )
        await server.serve(sockets=[sock])
        drained = await background_of(system).drain(grace)
        log.info(
            "stopped",
            extra={"fields": {"finished": drained.finished, "checkpointed": drained.cancelled}},
        )
    finally:
        sock.close()
        await system.close()
