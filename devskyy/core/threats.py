"""Threat detection decisions: count failures, decide blocks and their length (pure).

Failures are counted against what was *presented*, never a claimed name: a key id
whose owner proved possession of the key (RBAC denials), a caller's source address,
or a digest of the exact string presented (authentication failures). So someone who
sends garbage carrying a victim's name or key id blocks only themself.

After ``max_failures`` failures within ``window_seconds`` the subject is blocked for
``base_block_seconds``, doubled on each repeat offence up to ``max_block_seconds``.
Offences are forgiven ``forgive_after_seconds`` after the last block ended. Blocks
expire by themselves; an admin may lift one early. A block that would leave no usable
admin key is refused (``may_block``), so the last admin is never locked out.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from devskyy.model.security import BlockRecord


@dataclass(frozen=True)
class ThreatPolicy:
    """Thresholds and block lengths."""

    max_failures: int = 5
    window_seconds: float = 300.0
    base_block_seconds: float = 300.0
    factor: float = 2.0
    max_block_seconds: float = 86_400.0
    forgive_after_seconds: float = 86_400.0


@dataclass(frozen=True)
class BlockVerdict:
    """Whether to block now; if so, until when and as which offence."""

    block: bool
    until: float = 0.0
    offences: int = 0
    seconds: float = 0.0


def block_seconds(policy: ThreatPolicy, offence: int) -> float:
    """Length of the ``offence``-th block (1-based): base, then doubled, capped."""
    return float(
        min(policy.base_block_seconds * policy.factor ** (offence - 1), policy.max_block_seconds)
    )


def is_blocked(record: BlockRecord | None, now: float) -> bool:
    """Whether a block is in force at ``now`` (blocks expire by themselves)."""
    return record is not None and now < record.until


def judge(
    failures_in_window: int,
    previous: BlockRecord | None,
    now: float,
    policy: ThreatPolicy,
) -> BlockVerdict:
    """Whether ``failures_in_window`` failures call for a block, and how long."""
    if failures_in_window < policy.max_failures:
        return BlockVerdict(False)
    offence = 1
    if previous is not None and now - previous.until < policy.forgive_after_seconds:
        offence = previous.offences + 1
    seconds = block_seconds(policy, offence)
    return BlockVerdict(True, now + seconds, offence, seconds)


def may_block(subject_is_admin: bool, other_usable_admins: int) -> bool:
    """False when blocking would leave no admin able to get in."""
    return not subject_is_admin or other_usable_admins > 0


class FailureCounter:
    """Failure times per subject within the window (``now`` is passed in)."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}

    def record(self, subject: str, now: float, policy: ThreatPolicy) -> int:
        """Count one failure; return how many fall within the window."""
        log = self._failures.setdefault(subject, deque())
        log.append(now)
        horizon = now - policy.window_seconds
        while log and log[0] <= horizon:
            log.popleft()
        while len(log) > policy.max_failures:
            log.popleft()
        return len(log)

    def clear(self, subject: str) -> None:
        """Forget a subject's failures (after a block, or an unblock)."""
        self._failures.pop(subject, None)

    def sweep(self, now: float, policy: ThreatPolicy) -> None:
        """Drop subjects with no failure left in the window."""
        horizon = now - policy.window_seconds
        stale = [s for s, log in self._failures.items() if not log or log[-1] <= horizon]
        for subject in stale:
            del self._failures[subject]
