"""Rate limiting: exact sliding window, retry-after, manifest overrides (fake clock)."""

from __future__ import annotations

import pytest
from security_helpers import manager, shipped_roles

from devskyy.adapters.clock import FakeClock
from devskyy.core.ratelimit import RateDecision, SlidingWindowLog
from devskyy.model.manifests import Agent
from devskyy.model.resources import ResourceSet


def test_the_101st_request_in_the_window_is_refused_with_retry_after() -> None:
    log = SlidingWindowLog()
    for i in range(100):
        decision = log.hit("a", 1000.0 + i * 0.5, 100, 60)
        assert decision.allowed
        assert decision.remaining == 99 - i
    refused = log.hit("a", 1049.5, 100, 60)
    assert refused == RateDecision(False, 100, 60, 0, 10.5, 60.0)
    # Exactly when the first request leaves the window, one more fits.
    assert not log.hit("a", 1059.999, 100, 60).allowed
    assert log.hit("a", 1060.0, 100, 60).allowed
    assert not log.hit("a", 1060.0, 100, 60).allowed
    assert log.hit("a", 1060.5, 100, 60).allowed


def test_sliding_not_fixed_window() -> None:
    # A fixed window would let 2x the limit through around its boundary.
    log = SlidingWindowLog()
    assert all(log.hit("a", 59.0, 10, 60).allowed for _ in range(10))
    assert not log.hit("a", 61.0, 10, 60).allowed
    assert log.hit("a", 119.0, 10, 60).allowed


def test_keys_are_independent_and_swept() -> None:
    log = SlidingWindowLog(sweep_every=4)
    assert log.hit("a", 0.0, 1, 10).allowed
    assert log.hit("b", 0.0, 1, 10).allowed
    assert not log.hit("a", 1.0, 1, 10).allowed
    assert len(log) == 2
    log.hit("c", 20.0, 1, 10)  # the fourth hit sweeps a and b, idle for a whole window
    assert len(log) == 1
    assert log.peek("a", 20.0, 1, 10) == RateDecision(True, 1, 10, 1, 0.0, 0.0)


def test_invalid_limits() -> None:
    with pytest.raises(ValueError, match="limit must be >= 1 and window > 0"):
        SlidingWindowLog().hit("a", 0.0, 0, 10)


def test_manager_default_is_100_per_60s(clock: FakeClock) -> None:
    sm = manager(clock)
    assert all(sm.check_rate_limit("my_agent") for _ in range(100))
    assert sm.check_rate_limit("my_agent") is False
    status = sm.rate_limit("my_agent")
    assert (status.allowed, status.remaining, status.retry_after) == (False, 0, 60.0)
    clock.advance(60)
    assert sm.check_rate_limit("my_agent")
    assert sm.check_rate_limit("other")


def test_guide_call_with_explicit_limit(clock: FakeClock) -> None:
    sm = manager(clock)
    assert all(sm.check_rate_limit("a", limit=3, window_seconds=10) for _ in range(3))
    clock.advance(4)
    decision = sm.rate_limit("a", limit=3, window_seconds=10)
    assert (decision.allowed, decision.retry_after) == (False, 6.0)


def _with_agent_limit(requests: int, window: int) -> ResourceSet:
    agent = Agent.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Agent",
            "metadata": {"name": "seo"},
            "spec": {
                "module": "devskyy.agents.seo:SeoAgent",
                "rateLimit": {"requests": requests, "windowSeconds": window},
            },
        }
    )
    return ResourceSet((*shipped_roles().manifests, agent))


def test_manifest_rate_limit_overrides_the_default(clock: FakeClock) -> None:
    sm = manager(clock, roles=_with_agent_limit(2, 30))
    assert sm.check_rate_limit("seo")
    assert sm.check_rate_limit("seo")
    decision = sm.rate_limit("seo")
    assert (decision.allowed, decision.limit, decision.window, decision.retry_after) == (
        False,
        2,
        30.0,
        30.0,
    )
    # Explicit arguments win over the manifest.
    assert sm.check_rate_limit("seo", limit=5)


def test_refusals_are_audited_once_per_window(clock: FakeClock) -> None:
    sm = manager(clock)
    for _ in range(105):
        sm.check_rate_limit("a", limit=1, window_seconds=60)
    events = sm.get_audit_log(event_type="rate.limited")
    assert len(events) == 1
    assert events[0]["details"] == {"limit": 1, "retry_after": 60.0, "window": 60.0}
    clock.advance(60)
    for _ in range(3):
        sm.check_rate_limit("a", limit=1, window_seconds=60)
    assert len(sm.get_audit_log(event_type="rate.limited")) == 2
    assert sm.get_security_summary()["since_start"]["rate_limited"] == 106
