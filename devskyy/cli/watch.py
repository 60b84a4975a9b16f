"""``devskyy watch``: the GitOps daemon (and, with ``--serve``, the HTTP API beside it).

Translation only: options → ``WatchSettings``, signals → daemon requests, the API server
in the same event loop, and the graceful stop: SIGTERM/SIGINT stop the loop, background
runs get ``--grace`` seconds, the rest are checkpointed (resumable), exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from devskyy.adapters.daemon_lock import DaemonLease
from devskyy.adapters.engine import safe_url
from devskyy.adapters.git_source import GitSource
from devskyy.adapters.logs import configure
from devskyy.adapters.watcher import FsWatcher
from devskyy.cli._common import (
    CliContext,
    api_settings,
    error_boundary,
    listen,
    rate_limit_option,
    socket_url,
    workspace_option,
)
from devskyy.runtime.background import background_of
from devskyy.runtime.daemon import WatchDaemon, WatchSettings
from devskyy.runtime.system import open_system

log = logging.getLogger("devskyy.watch")


@click.command()
@click.argument("path", default="manifests", type=click.Path(path_type=Path))
@click.option("--prune", is_flag=True, help="Delete live resources whose manifests are gone.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Full resync every N seconds.",
)
@click.option(
    "--debounce",
    type=click.FloatRange(0.0, 60.0),
    default=0.3,
    show_default=True,
    help="Quiet time after a change, in seconds.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0.0),
    default=30.0,
    show_default=True,
    help="Seconds in-flight work gets on SIGTERM.",
)
@click.option("--serve", is_flag=True, help="Also serve the HTTP API in this process.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address of the API (--serve) and of --metrics-port.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="API port (--serve).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve the daemon's Prometheus metrics at http://HOST:PORT/metrics (no --serve needed).",
)
@workspace_option
@rate_limit_option
@click.option("--git-url", default=None, help="Pull mode: a git URL or local repository path.")
@click.option("--git-branch", default="main", show_default=True, help="Pull mode: the branch.")
@click.option(
    "--checkout",
    default=None,
    type=click.Path(path_type=Path),
    help="Pull mode: where to keep the checkout [default: .devskyy/checkout].",
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
@error_boundary
def watch(
    obj: CliContext,
    path: Path,
    prune: bool,
    interval: float,
    debounce: float,
    grace: float,
    serve: bool,
    host: str,
    port: int,
    metrics_port: int | None,
    workspaces: tuple[Path, ...],
    rate_limit: int | None,
    git_url: str | None,
    git_branch: str,
    checkout: Path | None,
    log_format: str,
) -> None:
    """Apply the manifests under PATH continuously (default: manifests/).

    Every change is validated first: a change with problems is rejected with the same
    file:line:col errors as `devskyy validate`, and the last good state keeps running.
    In pull mode (--git-url) PATH is relative to the repository's root.
    """
    configure(log_format)
    code = asyncio.run(
        _run(
            obj.url(),
            path=path,
            prune=prune,
            interval=interval,
            debounce=debounce,
            grace=grace,
            serve=serve,
            host=host,
            port=port,
            metrics_port=metrics_port,
            api=api_settings(workspaces, rate_limit) if serve else None,
            git_url=git_url,
            git_branch=git_branch,
            checkout=checkout,
        )
    )
    raise SystemExit(code)


@contextlib.contextmanager
def _signals(loop: asyncio.AbstractEventLoop, daemon: Any) -> Iterator[None]:
    handled = {signal.SIGTERM: daemon.request_stop, signal.SIGINT: daemon.request_stop}
    handled[signal.SIGHUP] = daemon.request_resync
    for sig, fn in handled.items():
        loop.add_signal_handler(sig, fn)
    try:
        yield
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


async def _run(url: str, **opts: Any) -> int:
    system = await open_system(url, start_agents=False)
    lease = DaemonLease(system.engine, system.clock)
    try:
        await asyncio.to_thread(lease.acquire)
    except BaseException:
        await system.close()
        raise
    server: Any = None
    metrics_server: Any = None
    try:
        system.security_manager()  # applies are audited by the daemon's hook
        git = None
        path: Path = opts["path"]
        if opts["git_url"]:
            checkout = opts["checkout"] or Path(".devskyy") / "checkout"
            git = GitSource(opts["git_url"], opts["git_branch"], checkout.resolve())
            watch_root = checkout
        else:
            if not path.exists():
                raise click.UsageError(f"{path} does not exist")
            watch_root = path
        system.extras["manifests_tree"] = git.checkout / path if git else path  # for /ui
        settings = WatchSettings(
            path=path,
            prune=opts["prune"],
            debounce=opts["debounce"],
            interval=opts["interval"],
            git=git,
        )
        loop = asyncio.get_running_loop()
        watch_root.mkdir(parents=True, exist_ok=True)
        daemon = WatchDaemon(system, settings, FsWatcher(watch_root, loop), lease=lease)
        if opts["metrics_port"] is not None:
            metrics_server = _start_metrics(daemon, opts["host"], opts["metrics_port"])
        with _signals(loop, daemon):
            if opts["serve"]:
                server = _start_server(system, opts["host"], opts["port"], opts["api"])
            log.info("starting", extra={"fields": {"state": _safe_url(url), "pid": os.getpid()}})
            await daemon.run()
        log.info("stopping: draining in-flight work", extra={"fields": {"grace": opts["grace"]}})
        if server is not None:
            server.should_exit = True
            await server.task
        drained = await background_of(system).drain(opts["grace"])
        log.info(
            "stopped",
            extra={"fields": {"finished": drained.finished, "checkpointed": drained.cancelled}},
        )
        return 0
    finally:
        if metrics_server is not None:
            metrics_server.close()
        await asyncio.to_thread(lease.release)
        await system.close()


def _start_metrics(daemon: WatchDaemon, host: str, port: int) -> Any:
    """The daemon's own /metrics, bound before the first pass (a port in use exits 1)."""
    from devskyy.runtime.watch_metrics import (  # noqa: PLC0415 - only with --metrics-port
        DaemonMetrics,
        serve_metrics,
        standard_collectors,
    )

    metrics = DaemonMetrics()
    standard_collectors(metrics.registry)
    daemon.observers.append(metrics.observe)
    server = serve_metrics(metrics.registry, host, port)
    shown = f"[{host}]" if ":" in host else host
    log.info(
        f"metrics on http://{shown}:{server.port}/metrics",
        extra={"fields": {"metrics_port": server.port}},
    )
    return server


def _start_server(system: Any, host: str, port: int, settings: Any) -> Any:
    import uvicorn  # noqa: PLC0415 - only with --serve

    from devskyy.api import create_app  # noqa: PLC0415 - only with --serve

    class _Embedded(uvicorn.Server):
        # The daemon owns the signals; uvicorn must not install its own handlers.
        def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
            return contextlib.nullcontext()

    sock = listen(host, port)  # a port in use is one error line, exit 1
    config = uvicorn.Config(create_app(system, settings), host=host, port=port, log_config=None)
    server = _Embedded(config)
    server.task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))  # type: ignore[attr-defined]
    log.info(f"serving on {socket_url(sock)}", extra={"fields": {"url": socket_url(sock)}})
    return server


def _safe_url(url: str) -> str:
    return safe_url(url)
