"""How a run session ends, decided without I/O: the closing status and what an abort records.

``closing`` is the status and error of a run whose steps are all final (failed when a
step failed or the workflow timed out). ``abandoning`` is what a run stopped by an error
records: ``cancelled`` for real cancellation (``CancelledError``, Ctrl-C), ``interrupted``
(resumable, not finished) when a distributed runner's backend went away (``RunnerLost``),
``failed`` with the error otherwise; ``cut_short`` is a step whose attempt it cut short
(pending again, so that resume runs it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace

from devskyy.errors import RunnerLost
from devskyy.model.runs import RunPatch, RunStatus, StepRecord, StepStatus
from devskyy.runtime.run_services import STEPS_FAILED, describe


def closing(
    records: Iterable[StepRecord], timed_out: bool, timeout_seconds: float
) -> tuple[RunStatus, str | None]:
    """The final status and error of a run whose steps are all final."""
    failed = [s.name for s in records if s.status is StepStatus.FAILED]
    status = RunStatus.FAILED if failed or timed_out else RunStatus.SUCCEEDED
    if timed_out:
        return status, f"workflow timed out after {timeout_seconds:g}s"
    if failed:
        return status, f"{STEPS_FAILED} {', '.join(failed)}"
    return status, None


def is_cancellation(error: BaseException) -> bool:
    """Real cancellation: the task was cancelled or the user pressed Ctrl-C."""
    return isinstance(error, asyncio.CancelledError | KeyboardInterrupt)


def abandoning(error: BaseException, now: float) -> tuple[str, RunPatch]:
    """Why the run stopped (said on each cut-short step) and the run patch to record."""
    if is_cancellation(error):
        return "the run was cancelled", RunPatch(status=RunStatus.CANCELLED, finished_at=now)
    text = describe(error)
    if isinstance(error, RunnerLost):  # resumable once the backend is back
        return f"the run was interrupted: {text}", RunPatch(
            status=RunStatus.INTERRUPTED, error=text
        )
    return f"the run failed: {text}", RunPatch(status=RunStatus.FAILED, finished_at=now, error=text)


def cut_short(record: StepRecord, why: str) -> StepRecord:
    """A step whose attempt was cut short: pending again, saying why."""
    return replace(
        record,
        status=StepStatus.PENDING,
        error=f"CancelledError: {why} during this step",
        error_type="CancelledError",
    )
