"""Circuit breaker: an explicit, frozen state machine with ``now`` passed in.

States (docs/manifests.md; pybreaker's state classes show the shape)::

    CLOSED ──(failureThreshold consecutive failures)──> OPEN(since)
    OPEN ──(first call at or after since + resetTimeoutSeconds)──> HALF_OPEN
    HALF_OPEN ──(one success)──> CLOSED
    HALF_OPEN ──(one failure)──> OPEN(since = now)

* CLOSED admits every call; a success resets the consecutive-failure count.
* OPEN refuses every call with ``retry_after = since + resetTimeoutSeconds - now``.
* HALF_OPEN admits at most ``halfOpenMaxCalls`` probe calls in total; the others are
  refused until a probe reports. (The original system half-opened for every caller.)

Every method returns a new ``Breaker``; the caller stores it. Results of calls that were
admitted earlier but report while the breaker is OPEN (slow calls overtaken by other
failures) do not change it. ``release`` gives back a probe slot of a call that ended
with neither success nor failure (cancelled by its caller).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import NamedTuple

from devskyy.model.manifests import CircuitBreakerSpec


class BreakerState(StrEnum):
    """Where a breaker is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True)
class BreakerPolicy:
    """A manifest's ``circuitBreaker:`` block."""

    failure_threshold: int = 5
    reset_timeout: float = 60.0
    half_open_max_calls: int = 1

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, not {self.failure_threshold}")
        if self.reset_timeout <= 0:
            raise ValueError(f"reset_timeout must be positive, not {self.reset_timeout}")
        if self.half_open_max_calls < 1:
            raise ValueError(
                f"half_open_max_calls must be at least 1, not {self.half_open_max_calls}"
            )

    @classmethod
    def from_spec(cls, spec: CircuitBreakerSpec) -> BreakerPolicy:
        """Compile a manifest's ``circuitBreaker:`` block."""
        return cls(
            failure_threshold=spec.failure_threshold,
            reset_timeout=spec.reset_timeout_seconds,
            half_open_max_calls=spec.half_open_max_calls,
        )


class Admission(NamedTuple):
    """The answer to "may this call go through?" and the breaker that results.

    A named tuple rather than a frozen dataclass: one is built per call (hot path).
    """

    allowed: bool
    breaker: Breaker
    retry_after: float = 0.0
    probe: bool = False


@dataclass(frozen=True)
class Breaker:
    """One breaker's state. ``failures`` counts consecutive failures while CLOSED."""

    policy: BreakerPolicy = BreakerPolicy()
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float | None = None
    probes: int = 0
    opened_count: int = 0

    def _reopen(self, now: float) -> Breaker:
        return replace(
            self,
            state=BreakerState.OPEN,
            failures=0,
            opened_at=now,
            probes=0,
            opened_count=self.opened_count + 1,
        )

    def state_at(self, now: float) -> BreakerState:
        """The state a call arriving at ``now`` would see (OPEN turns HALF_OPEN in time)."""
        if (
            self.state is BreakerState.OPEN
            and self.opened_at is not None
            and now >= self.opened_at + self.policy.reset_timeout
        ):
            return BreakerState.HALF_OPEN
        return self.state

    def is_open(self, now: float) -> bool:
        """True while calls are refused because the reset timeout has not passed."""
        return self.state_at(now) is BreakerState.OPEN

    def retry_after(self, now: float) -> float:
        """Seconds until the breaker will admit a probe (0 when it admits calls now)."""
        if self.state_at(now) is BreakerState.OPEN and self.opened_at is not None:
            return self.opened_at + self.policy.reset_timeout - now
        return 0.0

    def admit(self, now: float) -> Admission:
        """Decide whether a call arriving at ``now`` goes through."""
        state = self.state_at(now)
        if state is BreakerState.CLOSED:
            return Admission(True, self)
        if state is BreakerState.OPEN:
            return Admission(False, self, retry_after=self.retry_after(now))
        current = self if self.state is BreakerState.HALF_OPEN else self._half_open()
        if current.probes >= self.policy.half_open_max_calls:
            return Admission(False, current, retry_after=0.0)
        return Admission(True, replace(current, probes=current.probes + 1), probe=True)

    def _half_open(self) -> Breaker:
        return replace(self, state=BreakerState.HALF_OPEN, probes=0, failures=0)

    def on_success(self, now: float) -> Breaker:
        """A call admitted earlier succeeded."""
        del now  # successes do not depend on time; kept for a uniform signature
        if self.state is BreakerState.OPEN or (
            self.state is BreakerState.CLOSED and self.failures == 0
        ):
            return self  # nothing changes (the common case: no allocation)
        return replace(self, state=BreakerState.CLOSED, failures=0, opened_at=None, probes=0)

    def on_failure(self, now: float) -> Breaker:
        """A call admitted earlier failed at ``now``."""
        if self.state is BreakerState.OPEN:
            return self
        if self.state is BreakerState.HALF_OPEN:
            return self._reopen(now)
        failures = self.failures + 1
        if failures >= self.policy.failure_threshold:
            return self._reopen(now)
        return replace(self, failures=failures)

    def release(self) -> Breaker:
        """Give back the probe slot of a call that was abandoned without a result."""
        if self.state is BreakerState.HALF_OPEN and self.probes > 0:
            return replace(self, probes=self.probes - 1)
        return self

    def reset(self) -> Breaker:
        """Back to CLOSED with no failures (the operator's manual reset)."""
        return Breaker(policy=self.policy, opened_count=self.opened_count)

    def describe(self, now: float) -> dict[str, object]:
        """A JSON-ready view for health and metrics endpoints."""
        return {
            "state": self.state_at(now).value,
            "consecutive_failures": self.failures,
            "opened_at": self.opened_at,
            "retry_after": round(self.retry_after(now), 6),
            "times_opened": self.opened_count,
            "failure_threshold": self.policy.failure_threshold,
            "reset_timeout_seconds": self.policy.reset_timeout,
            "half_open_max_calls": self.policy.half_open_max_calls,
        }
