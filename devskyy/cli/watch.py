"""``devskyy watch``: the GitOps daemon (and, with ``--serve``, the HTTP API beside it).

Translation only: options → ``WatchSettings``, signals → daemon requests, the API server
in the same event loop, and the graceful stop: SIGTERM/SIGINT stop the loop, background
runs get ``--grace`` seconds, the rest are checkpointed (resumable), exit 0.

Fatal errors are logged in the chosen ``--log-format`` (one JSON object with ``--log-format
json``) and end with the exit codes of ``runtime.daemon`` (docs/cli.md): 3 lease refused,
4 lease lost, 5 store URL unusable, 1 anything else at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from devskyy.adapters.daemon_lock import DEFAULT_TTL, DaemonLease, LeaseLost, LockHeld
from devskyy.adapters.engine import safe_url
from devskyy.adapters.git_source import GitSource
from devskyy.adapters.logs import configure
from devskyy.adapters.watcher import FsWatcher
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
from devskyy.errors import DevskyyError
from devskyy.runtime.background import background_of
from devskyy.runtime.daemon import (
    EXIT_ERROR,
    EXIT_LEASE_LOST,
    EXIT_LEASE_REFUSED,
    EXIT_STORE_CONFIG,
    WatchDaemon,
    WatchSettings,
)
from devskyy.runtime.security.checkpoints import checkpoint_loop
from devskyy.runtime.standby import StandbyStopped, record_takeover, wait_for_lease
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
@allow_command_option
@click.option("--git-url", default=None, help="Pull mode: a git URL or local repository path.")
@click.option("--git-branch", default="main", show_default=True, help="Pull mode: the branch.")
@click.option(
    "--checkout",
    default=None,
    type=click.Path(path_type=Path),
    help="Pull mode: where to keep the checkout [default: .devskyy/checkout].",
)
@click.option(
    "--webhook-secret-file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Pull mode with --serve: the shared secret of POST /api/gitops/webhook "
    "[default: $DEVSKYY_WEBHOOK_SECRET].",
)
@click.option(
    "--standby",
    is_flag=True,
    help="If another daemon holds the store, wait and take over when it dies (else exit 3).",
)
@click.option(
    "--lease-ttl",
    type=click.FloatRange(min=1.0, max=3600.0),
    default=DEFAULT_TTL,
    show_default=True,
    help="Seconds without a heartbeat before a standby takes the lease over.",
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--audit-checkpoint-interval",
    type=click.FloatRange(min=1.0),
    default=300.0,
    show_default=True,
    help="Seconds between audit checkpoints in the log (for audit --verify --checkpoint).",
)
@runner_options
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
    allowed_commands: tuple[str, ...],
    git_url: str | None,
    git_branch: str,
    checkout: Path | None,
    webhook_secret_file: Path | None,
    standby: bool,
    lease_ttl: float,
    log_format: str,
    audit_checkpoint_interval: float,
    runner: str,
    scheduler: str | None,
) -> None:
    """Apply the manifests under PATH continuously (default: manifests/).

    Every change is validated first: a change with problems is rejected with the same
    file:line:col errors as `devskyy validate`, and the last good state keeps running.
    In pull mode (--git-url) PATH is relative to the repository's root.
    """
    configure(log_format)
    url = obj.url()
    as_json = log_format == "json"
    problem = _store_config_problem(url)
    if problem is not None:
        raise SystemExit(_fatal(problem, EXIT_STORE_CONFIG, as_json=as_json))
    if webhook_secret_file is not None and not (serve and git_url):
        raise click.UsageError("--webhook-secret-file needs pull mode (--git-url) and --serve")
    if allowed_commands and not serve:
        raise click.UsageError("--allow-command needs --serve (it is a setting of the HTTP API)")
    secret = _webhook_secret(webhook_secret_file)
    try:
        code = _watch(
            url,
            path=path,
            prune=prune,
            interval=interval,
            debounce=debounce,
            grace=grace,
            serve=serve,
            host=host,
            port=port,
            metrics_port=metrics_port,
            api=api_settings(workspaces, rate_limit, allowed_commands) if serve else None,
            git_url=git_url,
            git_branch=git_branch,
            checkout=checkout,
            webhook_secret=secret,
            standby=standby,
            lease_ttl=lease_ttl,
            audit_checkpoint_interval=audit_checkpoint_interval,
            runner=RunnerChoice.of(runner, scheduler),
        )
    except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
        raise
    except LockHeld as exc:
        message = f"{exc} (use --standby to wait for it)"
        code = _fatal(message, EXIT_LEASE_REFUSED, as_json=as_json)
    except LeaseLost as exc:
        code = _fatal(str(exc), EXIT_LEASE_LOST, as_json=as_json)
    except Exception as exc:
        if not as_json:
            raise  # the error boundary's one line ("error: …"), exit 1
        # Anything else ends a start: one JSON line, with the traceback when it is not
        # one of ours; systemd restarts the daemon (exit 1).
        code = _fatal(str(exc), EXIT_ERROR, exc, as_json=True)
    raise SystemExit(code)


def _watch(url: str, **opts: Any) -> int:
    return asyncio.run(_run(url, **opts))


def _fatal(message: str, code: int, exc: BaseException | None = None, *, as_json: bool) -> int:
    """Say why the daemon ends, in the chosen log format, and return its exit code.

    Text: the usual ``error: …`` line on stderr. JSON: one ``critical`` log object with
    the message and exit code (and the traceback of an error that is not one of ours).
    """
    if not as_json:
        click.echo(f"error: {message}", err=True)
        return code
    fields: dict[str, Any] = {"exit_code": code}
    if exc is not None and not isinstance(exc, DevskyyError):
        message = f"{type(exc).__name__}: {exc}"
        fields["traceback"] = "".join(traceback.format_exception(exc))
    log.critical(f"stopping: {message}", extra={"fields": fields})
    return code


def _store_config_problem(url: str) -> str | None:
    """Why ``url`` can never work (malformed, unknown or missing driver, bad option), or None.

    Only what retrying cannot fix: an unreachable server is a start error that systemd
    retries, not a configuration problem.
    """
    from devskyy.adapters.db import check_url  # noqa: PLC0415 - SQLAlchemy is slow to import
    from devskyy.errors import StateError  # noqa: PLC0415

    try:
        check_url(url)  # parses the URL and loads the driver; no connection
    except StateError as exc:
        return str(exc)
    return None


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


@contextlib.contextmanager
def _stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> Iterator[None]:
    """While standing by, SIGTERM/SIGINT end the wait (exit 0); SIGHUP (a reload) must not
    kill it (its default action), there is just nothing to resync yet."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, log.info, "standing by: nothing to resync yet")
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)


async def _take_lease(system: Any, opts: dict[str, Any]) -> DaemonLease | None:
    """The store's lease (waiting for it with --standby); None if a signal ended the wait."""
    lease = DaemonLease(system.engine, system.clock, ttl=opts["lease_ttl"])
    stop = asyncio.Event()
    try:
        with _stop_on_signals(asyncio.get_running_loop(), stop):
            takeover = await wait_for_lease(lease, system.clock, standby=opts["standby"], stop=stop)
    except StandbyStopped:
        log.info("stopped while standing by")
        return None
    if takeover is not None:
        record_takeover(system, takeover)
    return lease


def _runner(opts: dict[str, Any]) -> RunnerChoice:
    choice = opts.get("runner")
    return choice if isinstance(choice, RunnerChoice) else RunnerChoice()


async def _run(url: str, **opts: Any) -> int:
    system = await open_system(url, start_agents=False, **_runner(opts).open_options())
    try:
        lease = await _take_lease(system, opts)
    except BaseException:
        await system.close()
        raise
    if lease is None:
        await system.close()
        return 0
    server: Any = None
    metrics_server: Any = None
    loops: list[asyncio.Task[None]] = []  # audit checkpoints; run heartbeats and take-over
    try:
        system.security_manager()  # applies are audited by the daemon's hook
        loops += [
            asyncio.create_task(
                checkpoint_loop(
                    system.security_manager(), system.clock, opts["audit_checkpoint_interval"]
                )
            ),
            asyncio.create_task(_run_keeper(system).keep()),
        ]
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
        system.manifests_tree = git.checkout / path if git else path  # for /ui
        settings = WatchSettings(
            path=path,
            prune=opts["prune"],
            debounce=opts["debounce"],
            interval=opts["interval"],
            git=git,
        )
        loop = asyncio.get_running_loop()
        watch_root.mkdir(parents=True, exist_ok=True)
        daemon = WatchDaemon(
            system,
            settings,
            FsWatcher(watch_root, loop),
            lease=lease,
            scheduler=_scheduler(system, lease),
        )
        if opts["metrics_port"] is not None:
            metrics_server = _start_metrics(daemon, opts["host"], opts["metrics_port"])
        with _signals(loop, daemon):
            if opts["serve"]:
                server = _with_daemon_metrics(
                    _start_server(
                        system, opts["host"], opts["port"], opts["api"], _webhook(daemon, git, opts)
                    ),
                    daemon,
                )
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
        for task in loops:
            task.cancel()
        if metrics_server is not None:
            metrics_server.close()
        await asyncio.to_thread(lease.release)
        await system.close()


def _run_keeper(system: Any) -> Any:
    """The leader's run keeper: heartbeats its scheduled runs, takes over a dead owner's."""
    from devskyy.runtime.takeover import RunKeeper  # noqa: PLC0415

    return RunKeeper(lambda: system.workflows, system.clock, system.background.start)


def _scheduler(system: Any, lease: DaemonLease) -> Any:
    """The leader's scheduler: its fires are recorded under the lease's fence."""
    from devskyy.adapters.schedule_store import SqlScheduleStore  # noqa: PLC0415
    from devskyy.runtime.scheduler import Scheduler  # noqa: PLC0415

    store = SqlScheduleStore(system.engine)
    return Scheduler(system.live, system.workflows, store, system.background, fence=lease.fence)


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


WEBHOOK_SECRET_ENV = "DEVSKYY_WEBHOOK_SECRET"  # noqa: S105 - the variable's name


def _webhook_secret(path: Path | None) -> bytes | None:
    """The push webhook's shared secret: the file's content (without its final newline),
    else ``$DEVSKYY_WEBHOOK_SECRET``; never from a manifest. Never logged."""
    if path is not None:
        try:
            text = path.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise click.UsageError(
                f"cannot read --webhook-secret-file {path}: {exc.strerror}"
            ) from None
        if not text:
            raise click.UsageError(f"--webhook-secret-file {path} is empty")
        return text
    value = os.environ.get(WEBHOOK_SECRET_ENV, "")
    return value.encode() if value else None


def _webhook(daemon: WatchDaemon, git: GitSource | None, opts: dict[str, Any]) -> Any:
    """What the API's push webhook needs of this daemon; None outside pull mode."""
    from devskyy.api.routers.gitops import PushWebhook  # noqa: PLC0415 - only with --serve

    if git is None:
        return None

    secret = opts.get("webhook_secret")
    if secret is None:
        log.warning(
            "POST /api/gitops/webhook answers 409 until a secret is set "
            f"(${WEBHOOK_SECRET_ENV} or --webhook-secret-file)"
        )
    return PushWebhook(secret, opts["git_branch"], daemon.request_push)


def _with_daemon_metrics(server: Any, daemon: WatchDaemon) -> Any:
    """With --serve, the daemon's own figures are on the API's /metrics too."""
    from devskyy.runtime.watch_metrics import DaemonMetrics  # noqa: PLC0415 - only with --serve

    api = getattr(server.config.app.state, "api", None)
    if api is not None:
        daemon.observers.append(DaemonMetrics(api.metrics.registry).observe)
    return server


def _start_server(system: Any, host: str, port: int, settings: Any, webhook: Any = None) -> Any:
    import uvicorn  # noqa: PLC0415 - only with --serve

    from devskyy.api import create_app  # noqa: PLC0415 - only with --serve

    class _Embedded(uvicorn.Server):
        # The daemon owns the signals; uvicorn must not install its own handlers.
        def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
            return contextlib.nullcontext()

    sock = listen(host, port)  # a port in use is one error line, exit 1
    # No X-Forwarded-For from anyone: uvicorn's default trusts it from 127.0.0.1, and a
    # local client could then choose its source address (serve has --forwarded-allow-ips).
    config = uvicorn.Config(
        create_app(system, settings, webhook=webhook),
        host=host,
        port=port,
        log_config=None,
        proxy_headers=False,
    )
    server = _Embedded(config)
    server.task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))  # type: ignore[attr-defined]
    log.info(f"serving on {socket_url(sock)}", extra={"fields": {"url": socket_url(sock)}})
    return server


def _safe_url(url: str) -> str:
    return safe_url(url)
