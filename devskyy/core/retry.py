"""Retry policy: a small value that answers "attempt now", "sleep N seconds" or "give up".

A manifest's ``retry:`` block (``devskyy.model.manifests.RetrySpec``) compiles into one
``RetryPolicy`` with ``RetryPolicy.from_spec``. The policy only decides; the caller (the
orchestrator, the workflow engine, ``@BaseAgent.with_healing``) acts on the decision and
does the sleeping through its clock. This is tenacity's shape (``DoAttempt``/``DoSleep``)
with the inputs made explicit, so every decision is a pure function of its arguments.

Numbering: attempts are 1-based. After attempt ``n`` fails, ``decide(n, error, r)`` says
what to do next:

* ``GiveUp(reason)`` when ``error`` answers the request (``Fault.REQUEST`` below) or is not
  an ``Exception`` (cancellation, interrupts), or ``n`` reached ``maxAttempts``;
* otherwise ``DoSleep(delay)`` before attempt ``n + 1``, or ``DoAttempt()`` when that delay
  is zero.

The delay before attempt ``n + 1`` is ``min(initial * coefficient ** (n - 1), maximum)``,
then jittered by ``delay * (1 + jitter * (2 * r - 1))`` for the uniform random value
``r`` in ``[0, 1]`` (so ``r = 0.5`` means no jitter, the extremes give ``delay * (1 ± jitter)``),
and finally clamped to ``[0, maximum]``. An error that carries ``retry_after`` (seconds a
server asked for, HTTP's ``Retry-After``) sets the delay instead, capped at ``maximum``.

``nonRetryableErrors`` entries match an exception class or any class it derives from,
by plain name (``ValueError``) or by qualified name (``mypkg.errors.Boom``).

Errors are classified once, by ``RetryPolicy.classify`` (a ``Fault``), and both the retry
decision and the circuit breaker read that one answer:

* ``Fault.REQUEST``: the error answers the request (a ``PermanentError`` such as a declined
  card or bad input, a ``DevskyyError`` outside ``ExecutionError`` such as ``NotFound``, or
  an error listed in ``nonRetryableErrors``). The agent is up: never retried, and the
  breaker counts it as a success (pybreaker's ``exclude``).
* ``Fault.AGENT``: the error says something about the agent (timeouts, temporary errors,
  unexpected exceptions, ``BrokenResult``: a result that is not a JSON dict, and
  ``RetriesExhausted``: the agent's own self-healing gave up, the one permanent error that is
  the agent's failure). Retried while attempts remain; the breaker counts a failure.
* ``Fault.CANCELLED``: not an ``Exception`` (cancellation, interrupts), or ``RunnerLost``
  (the step runner's backend went away, the agent did not fail): neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from devskyy.errors import (
    DevskyyError,
    ExecutionError,
    PermanentError,
    RetriesExhausted,
    RunnerLost,
)
from devskyy.model.manifests import RetrySpec


@dataclass(frozen=True)
class DoAttempt:
    """Run the next attempt now."""


@dataclass(frozen=True)
class DoSleep:
    """Sleep ``seconds``, then run the next attempt."""

    seconds: float


@dataclass(frozen=True)
class GiveUp:
    """Stop retrying; ``reason`` says why, in words a person can act on."""

    reason: str


Decision = DoAttempt | DoSleep | GiveUp


class Fault(StrEnum):
    """Whose fault an error is; the retry policy and the breaker both read it."""

    REQUEST = "request"
    AGENT = "agent"
    CANCELLED = "cancelled"

    @property
    def outcome(self) -> str:
        """The outcome name metrics record for an attempt that failed this way."""
        return _OUTCOMES[self]


_OUTCOMES = {Fault.REQUEST: "answered", Fault.AGENT: "error", Fault.CANCELLED: "cancelled"}


def class_names(error: BaseException) -> list[str]:
    """Plain and qualified names of the error's class and every base class, nearest first."""
    names: list[str] = []
    for cls in type(error).__mro__:
        names.append(cls.__name__)
        names.append(f"{cls.__module__}.{cls.__qualname__}")
    return names


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, a cap, and errors that are never retried."""

    max_attempts: int = 3
    initial_interval: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval: float = 60.0
    jitter: float = 0.0
    non_retryable_errors: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be between 0 and 1, not {self.jitter}")
        if self.initial_interval < 0 or self.maximum_interval < 0:
            raise ValueError("intervals must not be negative")
        if self.backoff_coefficient < 1:
            raise ValueError(
                f"backoff_coefficient must be at least 1, not {self.backoff_coefficient}"
            )

    @classmethod
    def from_spec(cls, spec: RetrySpec) -> RetryPolicy:
        """Compile a manifest's ``retry:`` block."""
        return cls(
            max_attempts=spec.max_attempts,
            initial_interval=spec.initial_interval_seconds,
            backoff_coefficient=spec.backoff_coefficient,
            maximum_interval=spec.maximum_interval_seconds,
            jitter=spec.jitter,
            non_retryable_errors=frozenset(spec.non_retryable_errors),
        )

    @classmethod
    def no_retry(cls) -> RetryPolicy:
        """A policy that allows exactly one attempt."""
        return cls(max_attempts=1)

    def base_delay(self, attempt: int) -> float:
        """The delay after failed attempt ``attempt`` (1-based), before jitter."""
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, not {attempt}")
        # Multiply step by step and stop at the cap: coefficient ** n can overflow a float.
        delay = self.initial_interval
        for _ in range(attempt - 1):
            delay *= self.backoff_coefficient
            if delay >= self.maximum_interval:
                break
        return min(delay, self.maximum_interval)

    def delay(self, attempt: int, random_value: float) -> float:
        """The jittered, clamped delay after failed attempt ``attempt``."""
        if not 0.0 <= random_value <= 1.0:
            raise ValueError(f"random_value must be in [0, 1], not {random_value}")
        base = self.base_delay(attempt)
        jittered = base * (1.0 + self.jitter * (2.0 * random_value - 1.0))
        return max(0.0, min(jittered, self.maximum_interval))

    def non_retryable_match(self, error: BaseException) -> str | None:
        """The ``nonRetryableErrors`` entry the error matches, if any."""
        if not self.non_retryable_errors:
            return None
        for name in class_names(error):
            if name in self.non_retryable_errors:
                return name
        return None

    def retryable(self, error: BaseException) -> bool:
        """Whether any retry may help with this error (ignoring the attempt count)."""
        return self._refusal(error) is None

    def classify(self, error: BaseException) -> Fault:
        """Whose fault ``error`` is (see the module docstring): the one classification."""
        if not isinstance(error, Exception) or isinstance(error, RunnerLost):
            return Fault.CANCELLED
        return Fault.AGENT if self._refusal(error) is None else Fault.REQUEST

    def _refusal(self, error: BaseException) -> str | None:
        kind = type(error).__name__
        if not isinstance(error, Exception):
            return f"{kind} is not retried (cancellation or interrupt)"
        match = self.non_retryable_match(error)
        if match is not None:
            if match in (kind, f"{type(error).__module__}.{type(error).__qualname__}"):
                return f"{kind} is listed in nonRetryableErrors"
            return f"{kind} matches nonRetryableErrors entry {match!r}"
        if isinstance(error, RetriesExhausted):
            return None  # the agent's own healing gave up: its fault, so counted and retried
        if isinstance(error, PermanentError):
            if kind == "PermanentError":  # "…: card declined (permanent: not retried)"
                return "permanent: not retried"
            return f"{kind} is a permanent error"  # a subclass's name says which kind
        if isinstance(error, DevskyyError) and not isinstance(error, ExecutionError):
            return f"{kind} is not retried"
        return None

    def decide(self, attempt: int, error: BaseException, random_value: float = 0.5) -> Decision:
        """What to do after attempt ``attempt`` (1-based) failed with ``error``."""
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, not {attempt}")
        refusal = self._refusal(error)
        if refusal is not None:
            return GiveUp(refusal)
        if attempt >= self.max_attempts:
            return GiveUp(f"attempt {attempt} of {self.max_attempts} failed")
        seconds = self.delay(attempt, random_value)
        hint = getattr(error, "retry_after", None)
        if isinstance(hint, int | float) and not isinstance(hint, bool) and hint >= 0:
            seconds = min(float(hint), self.maximum_interval)  # what the other side asked
        return DoSleep(seconds) if seconds > 0 else DoAttempt()

    def schedule(self, random_value: float = 0.5) -> list[float]:
        """Every delay a fully failing run would sleep, in order (for docs and tests)."""
        return [self.delay(n, random_value) for n in range(1, self.max_attempts)]
