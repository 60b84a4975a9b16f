"""RetryPolicy: exact delays, caps, jitter bounds and the errors that are never retried."""

from __future__ import annotations

import asyncio

import pytest

from devskyy.core.retry import DoAttempt, DoSleep, GiveUp, RetryPolicy, class_names
from devskyy.errors import CircuitOpen, MissingInput, PermanentError, StepTimeout
from devskyy.model.manifests import RetrySpec


class Boom(Exception):
    pass


class SubBoom(Boom):
    pass


def test_defaults_follow_the_guide_three_attempts_exponential() -> None:
    policy = RetryPolicy.from_spec(RetrySpec())
    assert policy == RetryPolicy(3, 1.0, 2.0, 60.0, 0.0, frozenset())
    assert policy.decide(1, Boom()) == DoSleep(1.0)
    assert policy.decide(2, Boom()) == DoSleep(2.0)
    assert policy.decide(3, Boom()) == GiveUp("attempt 3 of 3 failed")


def test_from_spec_reads_camel_case_manifest_fields() -> None:
    spec = RetrySpec.model_validate(
        {
            "maxAttempts": 5,
            "initialIntervalSeconds": 0.5,
            "backoffCoefficient": 3,
            "maximumIntervalSeconds": 10,
            "jitter": 0.2,
            "nonRetryableErrors": ["ValueError"],
        }
    )
    assert RetryPolicy.from_spec(spec) == RetryPolicy(
        5, 0.5, 3.0, 10.0, 0.2, frozenset({"ValueError"})
    )


def test_exponential_delays_are_capped_at_the_maximum() -> None:
    policy = RetryPolicy(
        max_attempts=7, initial_interval=1.0, backoff_coefficient=3.0, maximum_interval=20.0
    )
    assert policy.schedule() == [1.0, 3.0, 9.0, 20.0, 20.0, 20.0]
    assert [policy.base_delay(n) for n in range(1, 5)] == [1.0, 3.0, 9.0, 20.0]


def test_huge_attempt_numbers_do_not_overflow() -> None:
    policy = RetryPolicy(max_attempts=100, backoff_coefficient=10.0, maximum_interval=5.0)
    assert policy.base_delay(99) == 5.0


def test_jitter_is_a_fraction_around_the_delay() -> None:
    policy = RetryPolicy(
        max_attempts=4,
        initial_interval=10.0,
        backoff_coefficient=2.0,
        maximum_interval=100.0,
        jitter=0.25,
    )
    assert policy.delay(1, 0.0) == 7.5
    assert policy.delay(1, 0.5) == 10.0
    assert policy.delay(1, 1.0) == 12.5
    assert policy.delay(2, 0.0) == 15.0
    assert policy.decide(2, Boom(), 1.0) == DoSleep(25.0)


def test_jitter_never_exceeds_the_maximum() -> None:
    policy = RetryPolicy(max_attempts=3, initial_interval=8.0, maximum_interval=8.0, jitter=1.0)
    assert policy.delay(1, 1.0) == 8.0
    assert policy.delay(1, 0.0) == 0.0


def test_zero_delay_means_attempt_now() -> None:
    policy = RetryPolicy(max_attempts=2, initial_interval=0.0)
    assert policy.decide(1, Boom()) == DoAttempt()
    assert policy.decide(2, Boom()) == GiveUp("attempt 2 of 2 failed")


def test_single_attempt_policy_gives_up_at_once() -> None:
    assert RetryPolicy.no_retry().decide(1, Boom()) == GiveUp("attempt 1 of 1 failed")


def test_permanent_errors_are_never_retried() -> None:
    policy = RetryPolicy(max_attempts=10)
    assert policy.decide(1, PermanentError("x")) == GiveUp("permanent: not retried")
    assert policy.decide(1, MissingInput("x")) == GiveUp("MissingInput is a permanent error")
    assert not policy.retryable(MissingInput("x"))


def test_temporary_errors_are_retried() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.decide(1, StepTimeout("t")) == DoSleep(1.0)
    assert policy.decide(1, CircuitOpen("c")) == DoSleep(1.0)


def test_non_retryable_by_exact_name() -> None:
    policy = RetryPolicy(max_attempts=5, non_retryable_errors=frozenset({"Boom"}))
    assert policy.decide(1, Boom()) == GiveUp("Boom is listed in nonRetryableErrors")


def test_non_retryable_by_base_class_name() -> None:
    policy = RetryPolicy(max_attempts=5, non_retryable_errors=frozenset({"Boom"}))
    assert policy.decide(1, SubBoom()) == GiveUp("SubBoom matches nonRetryableErrors entry 'Boom'")
    lookup = RetryPolicy(max_attempts=5, non_retryable_errors=frozenset({"LookupError"}))
    assert lookup.decide(1, KeyError("k")) == GiveUp(
        "KeyError matches nonRetryableErrors entry 'LookupError'"
    )


def test_non_retryable_by_qualified_name() -> None:
    qualified = f"{__name__}.Boom"
    policy = RetryPolicy(max_attempts=5, non_retryable_errors=frozenset({qualified}))
    assert policy.decide(1, SubBoom()) == GiveUp(
        f"SubBoom matches nonRetryableErrors entry {qualified!r}"
    )
    assert policy.decide(1, ValueError()) == DoSleep(1.0)


def test_class_names_walk_the_mro_nearest_first() -> None:
    names = class_names(SubBoom())
    assert names[:4] == ["SubBoom", f"{__name__}.SubBoom", "Boom", f"{__name__}.Boom"]
    assert "Exception" in names
    assert "BaseException" in names


def test_cancellation_is_never_retried() -> None:
    policy = RetryPolicy(max_attempts=5)
    assert policy.decide(1, asyncio.CancelledError()) == GiveUp(
        "CancelledError is not retried (cancellation or interrupt)"
    )
    assert policy.decide(1, KeyboardInterrupt()) == GiveUp(
        "KeyboardInterrupt is not retried (cancellation or interrupt)"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1, not 0"),
        ({"jitter": 1.5}, "jitter must be between 0 and 1, not 1.5"),
        ({"initial_interval": -1.0}, "intervals must not be negative"),
        ({"backoff_coefficient": 0.5}, "backoff_coefficient must be at least 1, not 0.5"),
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_attempt_numbers_and_random_values_are_checked() -> None:
    policy = RetryPolicy()
    with pytest.raises(ValueError, match=r"^attempt numbers start at 1, not 0$"):
        policy.decide(0, Boom())
    with pytest.raises(ValueError, match=r"^random_value must be in \[0, 1\], not 2$"):
        policy.delay(1, 2)


def test_policy_is_a_frozen_value() -> None:
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.max_attempts = 9  # type: ignore[misc]
