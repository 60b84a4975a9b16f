"""``devskyy serve``: the HTTP API (FastAPI on uvicorn) over the runtime of one state store.

Translation only: options → ``ApiSettings``; ``--manifests PATH`` is applied first
(validated, one revision, as ``devskyy apply``); then the runtime is opened with its
agents started, the app built with ``devskyy.api.create_app`` and served. On SIGTERM
or Ctrl-C uvicorn stops taking requests, background runs get ``--grace`` seconds, the
rest are recorded as cancelled (resumable), and the exit code is 0.

The client address is the connection's: ``X-Forwarded-For`` is trusted only from the
proxies named by ``--forwarded-allow-ips``. An audit checkpoint (``{seq, hash, at}``) is
logged at start and every ``--audit-checkpoint-interval`` seconds, for
``devskyy audit --verify --checkpoint LOG``. ``--allow-command`` lists the command lines
a request may give a command input (``verify_command``); without it the API takes none.
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
    allow_command_option,
    api_settings,
    error_boundary,
    listen,
    rate_limit_option,
    socket_url,
    workspace_option,
)
from devskyy.cli.worker import RunnerChoice, runner_options

log = logging.getLogger("devskyy.serve")
CHECKPOINT_INTERVAL = 300.0
STALE_AFTER = 120.0  # runtime.workflows.STALE_AFTER, without importing the engine here


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
@allow_command_option
@click.option(
    "--grace", default=30.0, show_default=True, help="Seconds in-flight runs get on shutdown."
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--forwarded-allow-ips",
    default=None,
    metavar="IPS",
    help="Behind a reverse proxy: the proxy addresses (comma-separated, or *) whose "
    "X-Forwarded-For/-Proto are trusted. Without it they are ignored and the client "
    "address is the connection's.",
)
@click.option(
    "--audit-checkpoint-interval",
    type=click.FloatRange(min=1.0),
    default=CHECKPOINT_INTERVAL,
    show_default=True,
    help="Seconds between audit checkpoints in the log (for audit --verify --checkpoint).",
)
@click.option(
    "--run-stale-after",
    type=click.FloatRange(min=0.4),
    default=STALE_AFTER,
    show_default=True,
    help="Seconds without a heartbeat after which a run whose owner is on another host is "
    "taken over by this server (its own runs heartbeat every quarter of it).",
)
@runner_options
@click.pass_obj
@error_boundary
def serve(
    obj: CliContext,
    host: str,
    port: int,
    manifests: Path | None,
    workspaces: tuple[Path, ...],
    rate_limit: int | None,
    allowed_commands: tuple[str, ...],
    grace: float,
    log_format: str,
    forwarded_allow_ips: str | None,
    audit_checkpoint_interval: float,
    run_stale_after: float,
    runner: str,
    scheduler: str | None,
) -> None:
    """Serve the HTTP API (every route but /healthz needs an API key)."""
    configure(log_format)
    if manifests is not None:
        _apply(obj.url(), manifests)
    settings = api_settings(workspaces, rate_limit, allowed_commands)
    edge = _Edge(forwarded_allow_ips, audit_checkpoint_interval, run_stale_after)
    choice = RunnerChoice.of(runner, scheduler)
    asyncio.run(_serve(obj.url(), host, port, settings, grace, edge, choice))


class _Edge:
    """How the server meets the network: trusted proxies, checkpoint pace."""

    def __init__(
        self,
        forwarded_allow_ips: str | None,
        checkpoint_interval: float,
        run_stale_after: float = STALE_AFTER,
    ) -> None:
        self.forwarded_allow_ips = forwarded_allow_ips
        self.checkpoint_interval = checkpoint_interval
        self.run_stale_after = run_stale_after

    def uvicorn_options(self) -> dict[str, Any]:
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default (and FORWARDED_ALLOW_IPS
        # from the environment): any local client could then pick its source address,
        # dodging a source block or framing another address. Off unless asked for.
        if self.forwarded_allow_ips is None:
            return {"proxy_headers": False}
        return {"proxy_headers": True, "forwarded_allow_ips": self.forwarded_allow_ips}


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


async def _serve(
    url: str,
    host: str,
    port: int,
    settings: Any,
    grace: float,
    edge: _Edge,
    choice: RunnerChoice = RunnerChoice(),  # noqa: B008 - frozen
) -> None:
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
    from devskyy.runtime.security.checkpoints import checkpoint_loop  # noqa: PLC0415
    from devskyy.runtime.system import open_system  # noqa: PLC0415
    from devskyy.runtime.takeover import RunKeeper, TakeoverPolicy  # noqa: PLC0415

    sock = listen(host, port)  # before anything starts: a port in use is one error line
    system = await open_system(url, **choice.open_options())
    try:
        app = create_app(system, settings)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            server_header=False,
            **edge.uvicorn_options(),
        )
        checkpoints = asyncio.create_task(
            checkpoint_loop(system.security_manager(), system.clock, edge.checkpoint_interval)
        )
        # Heartbeats for this server's runs; runs of a dead owner are taken over here.
        keeper = RunKeeper(
            system.registry.workflow_engine,
            system.clock,
            background_of(system).start,
            TakeoverPolicy(edge.run_stale_after),
        )
        keeping = asyncio.create_task(keeper.keep())
        server = _Server(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.stop)
        # Only now that the port is ours is the URL worth printing.
        log.info(
            f"serving on {socket_url(sock)}",
            extra={"fields": {"url": socket_url(sock), "pid": os.getpid()}},
        )
        try:
            await server.serve(sockets=[sock])
        finally:
            checkpoints.cancel()
            keeping.cancel()
        # Said at once, as watch does: Ctrl-C was followed by up to --grace silent seconds.
        log.info("stopping: draining in-flight work", extra={"fields": {"grace": grace}})
        drained = await background_of(system).drain(grace)
        log.info(
            "stopped",
            extra={"fields": {"finished": drained.finished, "checkpointed": drained.cancelled}},
        )
    finally:
        sock.close()
        await system.close()
