"""The circuit breaker state machine, step by step, with explicit times."""

from __future__ import annotations

import pytest

from devskyy.core.breaker import Breaker, BreakerPolicy, BreakerState
from devskyy.model.manifests import CircuitBreakerSpec


def fail(breaker: Breaker, times: int, now: float) -> Breaker:
    for _ in range(times):
        admission = breaker.admit(now)
        assert admission.allowed
        breaker = admission.breaker.on_failure(now)
    return breaker


def test_policy_from_spec_and_guide_default_of_five() -> None:
    assert BreakerPolicy.from_spec(CircuitBreakerSpec()) == BreakerPolicy(5, 60.0, 1)
    spec = CircuitBreakerSpec.model_validate(
        {"failureThreshold": 2, "resetTimeoutSeconds": 7.5, "halfOpenMaxCalls": 3}
    )
    assert BreakerPolicy.from_spec(spec) == BreakerPolicy(2, 7.5, 3)


def test_opens_after_exactly_the_threshold() -> None:
    breaker = fail(Breaker(BreakerPolicy(failure_threshold=3)), 2, now=10.0)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 2
    breaker = fail(breaker, 1, now=11.0)
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_at == 11.0
    assert breaker.opened_count == 1
    refused = breaker.admit(12.0)
    assert not refused.allowed
    assert refused.retry_after == 59.0
    assert refused.breaker is breaker


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = fail(Breaker(BreakerPolicy(failure_threshold=3)), 2, now=0.0)
    breaker = breaker.admit(0.0).breaker.on_success(0.0)
    assert breaker.failures == 0
    breaker = fail(breaker, 2, now=0.0)
    assert breaker.state is BreakerState.CLOSED


def test_lets_exactly_one_probe_through_after_the_reset_timeout() -> None:
    breaker = fail(Breaker(BreakerPolicy(failure_threshold=1, reset_timeout=30.0)), 1, now=100.0)
    assert breaker.state_at(129.999) is BreakerState.OPEN
    assert breaker.is_open(129.999)
    assert not breaker.admit(129.999).allowed
    assert breaker.state_at(130.0) is BreakerState.HALF_OPEN
    assert not breaker.is_open(130.0)
    probe = breaker.admit(130.0)
    assert probe.allowed
    assert probe.probe
    assert probe.breaker.state is BreakerState.HALF_OPEN
    assert probe.breaker.probes == 1
    second = probe.breaker.admit(131.0)
    assert not second.allowed
    assert second.retry_after == 0.0


def test_half_open_success_closes() -> None:
    breaker = fail(Breaker(BreakerPolicy(failure_threshold=2, reset_timeout=5.0)), 2, now=0.0)
    probe = breaker.admit(5.0)
    closed = probe.breaker.on_success(5.5)
    assert closed.state is BreakerState.CLOSED
    assert closed.failures == 0
    assert closed.opened_at is None
    assert closed.admit(5.6).allowed


def test_half_open_failure_reopens_with_a_new_since() -> None:
    breaker = fail(Breaker(BreakerPolicy(failure_threshold=2, reset_timeout=5.0)), 2, now=0.0)
    probe = breaker.admit(5.0)
    reopened = probe.breaker.on_failure(6.0)
    assert reopened.state is BreakerState.OPEN
    assert reopened.opened_at == 6.0
    assert reopened.opened_count == 2
    assert not reopened.admit(10.999).allowed
    assert reopened.admit(11.0).allowed


def test_half_open_admits_up_to_max_calls_probes() -> None:
    policy = BreakerPolicy(failure_threshold=1, reset_timeout=1.0, half_open_max_calls=2)
    breaker = fail(Breaker(policy), 1, now=0.0)
    first = breaker.admit(1.0)
    second = first.breaker.admit(1.0)
    third = second.breaker.admit(1.0)
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    # An abandoned probe gives its slot back.
    released = second.breaker.release()
    assert released.probes == 1
    assert released.admit(1.0).allowed


def test_results_of_calls_that_report_while_open_are_ignored() -> None:
    breaker = fail(Breaker(BreakerPolicy(failure_threshold=1)), 1, now=0.0)
    assert breaker.on_success(1.0) is breaker
    assert breaker.on_failure(1.0) is breaker


def test_manual_reset_closes() -> None:
    breaker = fail(Breaker(BreakerPolicy(failure_threshold=1)), 1, now=0.0)
    reset = breaker.reset()
    assert reset.state is BreakerState.CLOSED
    assert reset.admit(0.0).allowed
    assert reset.opened_count == 1


def test_describe_is_json_ready() -> None:
    breaker = fail(Breaker(BreakerPolicy(failure_threshold=1, reset_timeout=10.0)), 1, now=0.0)
    assert breaker.describe(4.0) == {
        "state": "open",
        "consecutive_failures": 0,
        "opened_at": 0.0,
        "retry_after": 6.0,
        "times_opened": 1,
        "failure_threshold": 1,
        "reset_timeout_seconds": 10.0,
        "half_open_max_calls": 1,
    }
    assert breaker.describe(10.0)["state"] == "half-open"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold must be at least 1, not 0"),
        ({"reset_timeout": 0.0}, "reset_timeout must be positive, not 0.0"),
        ({"half_open_max_calls": 0}, "half_open_max_calls must be at least 1, not 0"),
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        BreakerPolicy(**kwargs)  # type: ignore[arg-type]
