"""The one exception tree of devskyy.

Every error devskyy raises on purpose derives from ``DevskyyError``; the CLI and the
API map these to exit codes and HTTP statuses in one place each.

    DevskyyError
    ├── ManifestError            bad input in manifests (carries a list of Problems)
    ├── StateError               the store is missing, locked, or inconsistent
    │   ├── StoredValueTooDeep   a stored JSON document past the depth/size limits
    │   └── RevisionNotFound
    ├── NotFound                 an agent, workflow, run or key that does not exist
    ├── SecurityError
    │   ├── AuthenticationError  an API key that is unknown, expired, revoked, malformed
    │   ├── PermissionDenied     RBAC said no
    │   ├── RateLimited          over the limit; carries retry_after seconds
    │   └── Blocked              threat detection blocked the principal or key
    └── ExecutionError           an agent call or step failed
        ├── BrokenResult         the agent answered with something that is not a JSON dict
        ├── TemporaryError       a retry may help
        │   ├── StepTimeout
        │   ├── CircuitOpen      the breaker refused the call
        │   └── RunnerLost       the step runner (a Dask scheduler) went away mid-attempt
        └── PermanentError       a retry will not help
            ├── RetriesExhausted
            └── MissingInput     a step was not given data it needs
"""

from __future__ import annotations


class DevskyyError(Exception):
    """Root of every error devskyy raises on purpose."""


class ManifestError(DevskyyError):
    """Manifests failed loading or validation; ``problems`` holds every finding."""

    def __init__(self, problems: list[object]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class StateError(DevskyyError):
    """The state store cannot be used as asked."""


class StoredValueTooDeep(StateError):
    """A stored JSON document is nested or sized past the limits (``model.jsonlimits``).

    Refused before anything decodes it; the API answers 422 ``json_too_deep`` for a run.
    ``reason`` is the limit it went past (``JSON nested deeper than 100 levels``).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RevisionNotFound(StateError):
    """No stored revision has that number."""


class NotFound(DevskyyError):
    """A named thing (agent, workflow, run, key) does not exist."""


class SecurityError(DevskyyError):
    """Base of authentication, authorization, rate-limit and blocking errors."""


class AuthenticationError(SecurityError):
    """The credentials were missing or invalid; ``reason`` is a short code."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"authentication failed: {reason}")


class PermissionDenied(SecurityError):
    """RBAC denied the request."""


class RateLimited(SecurityError):
    """Over the rate limit; the caller may retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"rate limited; retry after {retry_after:.0f}s")


class Blocked(SecurityError):
    """The principal or key is blocked until ``until`` (epoch seconds)."""

    def __init__(self, reason: str, until: float | None = None) -> None:
        self.reason = reason
        self.until = until
        super().__init__(f"blocked: {reason}")


class ExecutionError(DevskyyError):
    """An agent call or workflow step failed."""


class BrokenResult(ExecutionError):
    """The agent returned something other than a JSON dict: its fault (breaker, retry)."""


class TemporaryError(ExecutionError):
    """A failure that a retry may fix."""


class StepTimeout(TemporaryError):
    """The call did not finish within its timeout."""


class CircuitOpen(TemporaryError):
    """The circuit breaker for the agent is open and refused the call.

    ``refused_by`` is the breaker's cell (the attempt executor sets it), so that an
    observer can tell the agent's own breaker from a step's."""

    refused_by: object = None


class RunnerLost(TemporaryError):
    """The step runner's backend (a Dask scheduler) is gone: the attempt failed, and the
    run stops as ``interrupted`` (resumable) instead of spending its retries."""


class PermanentError(ExecutionError):
    """A failure that no retry will fix."""


class RetriesExhausted(PermanentError):
    """Every allowed attempt failed; ``last`` is the final error."""

    def __init__(self, attempts: int, last: BaseException | None) -> None:
        self.attempts = attempts
        self.last = last
        super().__init__(f"gave up after {attempts} attempt(s): {last!r}")


class MissingInput(PermanentError):
    """A step's input referenced data that does not exist."""
