"""Prometheus metrics for one app (``/metrics``), on a per-app ``CollectorRegistry``.

Two kinds of figures:

* counted by the HTTP layer as it happens: requests by route and status, request
  latency, authentication failures by reason, rate-limited and blocked requests, RBAC
  denials, background runs by kind and final status, and agent call latency for the
  agent calls the API makes itself (scanner, fixer, and each step of the workflow runs
  it starts, from the step durations the run store records);
* read from the runtime at scrape time (a custom collector, so they are never stale):
  per-agent calls, errors, mean and p95 latency and breaker state from the
  orchestrator, workflow runs in the store by status, and step attempts by runner
  (``local``, ``dask``) and outcome.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from devskyy.runtime.step_runner import RunnerCounts
from devskyy.runtime.system import System
from devskyy.runtime.watch_metrics import standard_collectors

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BREAKER_STATES = ("closed", "half-open", "open")


class _RuntimeCollector(Collector):
    """Per-agent figures and run counts, read when Prometheus scrapes."""

    def __init__(self, system: System) -> None:
        self.system = system

    def collect(self) -> Iterable[Metric]:
        calls = CounterMetricFamily(
            "devskyy_agent_calls", "Agent calls (attempts) since start", labels=["agent"]
        )
        errors = CounterMetricFamily(
            "devskyy_agent_errors", "Agent calls that failed since start", labels=["agent"]
        )
        mean = GaugeMetricFamily(
            "devskyy_agent_latency_mean_seconds",
            "Mean agent call latency over the recent window",
            labels=["agent"],
        )
        p95 = GaugeMetricFamily(
            "devskyy_agent_latency_p95_seconds",
            "95th percentile agent call latency over the recent window",
            labels=["agent"],
        )
        breaker = GaugeMetricFamily(
            "devskyy_agent_circuit_breaker_state",
            "1 for the breaker's current state (closed, half-open, open)",
            labels=["agent", "state"],
        )
        for name, m in self.system.orchestrator.get_agent_metrics().items():
            calls.add_metric([name], float(m["total_calls"]))
            errors.add_metric([name], float(m["total_errors"]))
            mean.add_metric([name], float(m["mean_response_time"]))
            p95.add_metric([name], float(m["p95_response_time"]))
            state = str(m["circuit_breaker"]["state"])
            for candidate in BREAKER_STATES:
                breaker.add_metric([name, candidate], 1.0 if candidate == state else 0.0)
        runs = GaugeMetricFamily(
            "devskyy_workflow_runs", "Workflow runs in the store by status", labels=["status"]
        )
        for status, count in sorted(self.system.workflows.store.count_by_status().items()):
            runs.add_metric([str(status)], float(count))
        attempts = CounterMetricFamily(
            "devskyy_runner_attempts",
            "Step attempts by the runner that ran them (local, dask) and outcome",
            labels=["runner", "outcome"],
        )
        counts = getattr(self.system.orchestrator.runner, "counts", None)
        if isinstance(counts, RunnerCounts):
            for (runner, outcome), count in sorted(counts.snapshot().items()):
                attempts.add_metric([runner, outcome], float(count))
        yield from (calls, errors, mean, p95, breaker, runs, attempts)


class ApiMetrics:
    """The metrics of one app; ``render()`` is the ``/metrics`` body."""

    def __init__(self, system: System) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.requests = Counter(
            "devskyy_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "devskyy_http_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.auth_failures = Counter(
            "devskyy_auth_failures", "Requests refused for their key", ["reason"], registry=r
        )
        self.rate_limited = Counter(
            "devskyy_rate_limited", "Requests refused over the rate limit", registry=r
        )
        self.denied = Counter("devskyy_rbac_denials", "Requests refused by RBAC", registry=r)
        self.runs = Counter(
            "devskyy_background_runs",
            "Runs started by this server that ended, by kind and status",
            ["kind", "status"],
            registry=r,
        )
        self.agent_seconds = Histogram(
            "devskyy_agent_call_duration_seconds",
            "Agent call latency, every attempt through the orchestrator",
            ["agent"],
            registry=r,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        r.register(_RuntimeCollector(system))
        standard_collectors(r)  # process, Python, devskyy_build_info

    def run_ended(self, kind: str, status: str) -> None:
        self.runs.labels(kind, status).inc()

    def observe_call(self, agent: str, seconds: float, outcome: str) -> None:
        """The orchestrator's call observer: every attempt at every agent, in seconds."""
        if outcome != "cancelled":
            self.agent_seconds.labels(agent).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
