"""Prometheus metrics every devskyy process exposes, and the watch daemon's own.

``standard_collectors`` adds what a Prometheus user expects from any exporter: the
process collector (CPU, memory, open files, start time), the Python platform and GC
collectors, and ``devskyy_build_info`` (version and Python as labels, value 1). The API's
``/metrics`` and the daemon's ``--metrics-port`` both use it.

``DaemonMetrics`` observes each finished reconcile pass (``WatchDaemon.observers``) and
answers: when did the last sync end and how (applied, in_sync, rejected, error), which
revision is live, how many passes failed, how long passes take, and how many live
resources --prune would delete. ``serve_metrics`` serves a registry on its own port, so
the daemon has metrics without ``--serve``.
"""

from __future__ import annotations

import platform
import threading
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from devskyy.errors import DevskyyError
from devskyy.runtime.daemon import PassOutcome

RESULTS = ("applied", "in_sync", "rejected", "error")


def devskyy_version() -> str:
    try:
        return version("devskyy")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


class _BuildInfo(Collector):
    """``devskyy_build_info{version, python_version, python_implementation} 1``."""

    def collect(self) -> list[Metric]:
        info = GaugeMetricFamily(
            "devskyy_build_info",
            "devskyy build information (the value is always 1)",
            labels=["version", "python_version", "python_implementation"],
        )
        info.add_metric(
            [devskyy_version(), platform.python_version(), platform.python_implementation()],
            1.0,
        )
        return [info]


def standard_collectors(registry: CollectorRegistry) -> None:
    """Process, platform and GC collectors plus build info, on a per-app registry."""
    # New instances: prometheus_client's own are registered on its global registry.
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(_BuildInfo())


def result_of(outcome: PassOutcome) -> str:
    """How a pass ended: rejected (invalid change), error, applied, or in_sync."""
    if outcome.rejected:
        return "rejected"
    if outcome.error is not None:
        return "error"
    return "applied" if any(outcome.counts.values()) else "in_sync"


class DaemonMetrics:
    """The watch daemon's figures; ``observe`` is a ``WatchDaemon`` observer."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.last_sync = Gauge(
            "devskyy_watch_last_sync_timestamp_seconds",
            "When the last reconcile pass ended (Unix time)",
            registry=r,
        )
        self.last_success = Gauge(
            "devskyy_watch_last_success_timestamp_seconds",
            "When the last pass that applied or found no change ended (Unix time)",
            registry=r,
        )
        self.last_result = Gauge(
            "devskyy_watch_last_sync_result",
            "1 for how the last pass ended (applied, in_sync, rejected, error), else 0",
            ["result"],
            registry=r,
        )
        self.revision = Gauge(
            "devskyy_watch_revision", "The live revision after the last pass", registry=r
        )
        self.orphans = Gauge(
            "devskyy_watch_orphans",
            "Live resources missing from the manifests (--prune would delete them)",
            registry=r,
        )
        self.passes = Counter(
            "devskyy_watch_passes",
            "Reconcile passes by trigger and result",
            ["reason", "result"],
            registry=r,
        )
        self.errors = Counter(
            "devskyy_watch_reconcile_errors",
            "Passes that did not apply: rejected changes and errors",
            ["result"],
            registry=r,
        )
        self.seconds = Histogram(
            "devskyy_watch_pass_duration_seconds",
            "How long one reconcile pass takes",
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        for result in RESULTS:  # every series exists from the start, at 0
            self.last_result.labels(result).set(0)
        for result in ("rejected", "error"):
            self.errors.labels(result)

    def observe(self, outcome: PassOutcome) -> None:
        result = result_of(outcome)
        if outcome.finished_at is not None:
            self.last_sync.set(outcome.finished_at)
            if result in ("applied", "in_sync"):
                self.last_success.set(outcome.finished_at)
        for candidate in RESULTS:
            self.last_result.labels(candidate).set(1.0 if candidate == result else 0.0)
        if outcome.revision is not None:
            self.revision.set(outcome.revision)
        if result in ("applied", "in_sync"):
            self.orphans.set(len(outcome.orphans))
        self.passes.labels(outcome.reason, result).inc()
        if result in ("rejected", "error"):
            self.errors.labels(result).inc()
        self.seconds.observe(outcome.seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class MetricsServer:
    """A running ``/metrics`` listener (a daemon thread); ``close()`` stops it."""

    server: Any
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve ``registry`` at ``http://HOST:PORT/metrics``; a port in use is a DevskyyError."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise DevskyyError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
        ) from None
    return MetricsServer(server, thread)
