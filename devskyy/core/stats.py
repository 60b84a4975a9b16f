"""Per-agent call statistics and statistical anomaly detection (pure: times are arguments).

``CallTracker`` keeps lifetime counters plus a rolling window of the last ``window``
calls (default 100). Everything rate-like (success rate, mean, p95) is computed over
that window, so an agent that failed an hour ago and works now reads as healthy.

Two detectors run on every recorded call, each against the window *before* the call:

* **Latency: rolling z-score.** With at least ``min_samples`` (20) calls in the window,
  a call is anomalous when ``(duration - mean) / sigma > z_threshold`` (3.0), where
  ``sigma = max(stdev, 5% of mean, 1 µs)``; the floor keeps a perfectly steady history
  from flagging noise. Only slow calls count (fast is never a problem).
* **Error rate: EWMA control chart** (Roberts 1959). ``ewma = a*e + (1-a)*ewma`` with
  ``e`` = 1 for an error, 0 otherwise, and ``a = ewma_alpha`` (0.1). Its upper control
  limit is ``p + L * sqrt(a / (2 - a) * p * (1 - p))`` with ``L = ewma_limit`` (3.0)
  and ``p`` the baseline: the error rate of the window before the call, leaving out its
  most recent ``round(2 / a) - 1`` calls (the EWMA's effective memory, 19) so that a
  burst does not hide itself, floored at 5% so that a clean history tolerates a single
  error. On a clean history the limit is 0.2 and the third consecutive error raises the
  alarm. The alarm is on while the EWMA is above the limit and needs ``min_samples``
  calls of history.

``percentile`` interpolates linearly between closest ranks (NumPy's default).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections import deque
from dataclasses import dataclass, field
from statistics import fmean, pstdev


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation; 0.0 for no values."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be between 0 and 100, not {q}")
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean_and_sigma(samples: list[float], min_relative_sigma: float = 0.05) -> tuple[float, float]:
    """The samples' mean and their standard deviation floored as the docstring says."""
    mean = fmean(samples)
    return mean, max(pstdev(samples), min_relative_sigma * abs(mean), 1e-6)


def zscore(value: float, samples: list[float], min_relative_sigma: float = 0.05) -> float:
    """How many (floored) standard deviations ``value`` lies above the samples' mean."""
    if not samples:
        return 0.0
    mean, sigma = mean_and_sigma(samples, min_relative_sigma)
    return (value - mean) / sigma


def ewma_upper_limit(p: float, alpha: float, width: float) -> float:
    """The EWMA chart's upper control limit for a Bernoulli rate ``p``."""
    return p + width * math.sqrt(alpha / (2.0 - alpha) * p * (1.0 - p))


@dataclass(frozen=True)
class Anomaly:
    """One detected anomaly: ``kind`` is ``latency`` or ``error_rate``."""

    kind: str
    at: float
    value: float
    threshold: float
    score: float

    def as_dict(self) -> dict[str, float | str]:
        return {
            "kind": self.kind,
            "at": self.at,
            "value": round(self.value, 6),
            "threshold": round(self.threshold, 6),
            "score": round(self.score, 3),
        }


@dataclass(frozen=True)
class StatsSnapshot:
    """A JSON-ready summary of a tracker at one moment."""

    total_calls: int
    total_errors: int
    window_size: int
    window_calls: int
    window_errors: int
    success_rate: float
    error_rate: float
    mean_response_time: float
    p95_response_time: float
    last_response_time: float | None
    error_rate_ewma: float
    latency_alarm: bool
    error_rate_alarm: bool
    anomalies_detected: int
    recent_anomalies: tuple[Anomaly, ...]

    @property
    def degraded(self) -> bool:
        """True while either detector's alarm is on."""
        return self.latency_alarm or self.error_rate_alarm

    def as_dict(self) -> dict[str, object]:
        return {
            "total_calls": self.total_calls,
            "total_errors": self.total_errors,
            "window_size": self.window_size,
            "window_calls": self.window_calls,
            "window_errors": self.window_errors,
            "success_rate": round(self.success_rate, 6),
            "error_rate": round(self.error_rate, 6),
            "mean_response_time": round(self.mean_response_time, 6),
            "p95_response_time": round(self.p95_response_time, 6),
            "last_response_time": self.last_response_time,
            "error_rate_ewma": round(self.error_rate_ewma, 6),
            "latency_alarm": self.latency_alarm,
            "error_rate_alarm": self.error_rate_alarm,
            "anomalies_detected": self.anomalies_detected,
            "recent_anomalies": [a.as_dict() for a in self.recent_anomalies],
        }


@dataclass
class CallTracker:
    """Counters, a rolling window and the two detectors of the module docstring."""

    window: int = 100
    min_samples: int = 20
    z_threshold: float = 3.0
    ewma_alpha: float = 0.1
    ewma_limit: float = 3.0
    min_error_rate: float = 0.05
    latency_alarm_calls: int = 5
    keep_anomalies: int = 20
    total_calls: int = 0
    total_errors: int = 0
    anomalies_detected: int = 0
    error_rate_ewma: float = 0.0
    error_rate_alarm: bool = False
    _durations: deque[float] = field(init=False, repr=False)
    _errors: deque[bool] = field(init=False, repr=False)
    # Calls since the last anomalously slow one (the alarm holds for the next few).
    _since_slow: float = field(default=math.inf, init=False, repr=False)
    _anomalies: deque[Anomaly] = field(init=False, repr=False)
    _sum: float = field(default=0.0, init=False, repr=False)
    _sumsq: float = field(default=0.0, init=False, repr=False)
    _appends: int = field(default=0, init=False, repr=False)
    _span: int = field(default=19, init=False, repr=False)
    # Errors in the window, kept as calls come and go (the baseline's count is made
    # from it only when the error rate needs a baseline: see _baseline).
    _window_errors: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be at least 1, not {self.window}")
        if not 0.0 < self.ewma_alpha <= 1.0:
            raise ValueError(f"ewma_alpha must be in (0, 1], not {self.ewma_alpha}")
        self._durations = deque(maxlen=self.window)
        self._errors = deque(maxlen=self.window)
        self._anomalies = deque(maxlen=self.keep_anomalies)
        self._span = round(2 / self.ewma_alpha) - 1

    @property
    def latency_alarm(self) -> bool:
        """True while one of the last ``latency_alarm_calls`` calls was anomalously slow."""
        return self._since_slow < self.latency_alarm_calls

    @property
    def degraded(self) -> bool:
        """True while either detector's alarm is on."""
        return self.latency_alarm or self.error_rate_alarm

    def record(self, duration: float, ok: bool, now: float) -> tuple[Anomaly, ...]:
        """Add one call; return the anomalies it raised (if any). O(1) per call.

        Every attempt of every step records here (twice: the agent's and the
        orchestrator's tracker), so the fields are read into locals once.
        """
        found: tuple[Anomaly, ...] = ()
        durations = self._durations
        calls = len(durations)
        enough = calls >= self.min_samples

        slow = False
        if enough and (duration > self._sum / calls or self.z_threshold < 0.0):
            # A call no slower than the mean has a score of at most 0: never anomalous
            # under a threshold of 0 or more (half the calls skip the rest).
            mean = self._sum / calls
            variance = self._sumsq / calls - mean * mean
            spread = math.sqrt(variance) if variance > 0.0 else 0.0
            sigma = max(spread, 0.05 * abs(mean), 1e-6)
            score = (duration - mean) / sigma
            if score > self.z_threshold:
                slow = True
                found = (Anomaly("latency", now, duration, mean + self.z_threshold * sigma, score),)

        alpha = self.ewma_alpha
        ewma = (1 - alpha) * self.error_rate_ewma + (0.0 if ok else alpha)
        self.error_rate_ewma = ewma
        # The limit is never below the floored baseline, so a small EWMA cannot alarm.
        alarm = False
        if enough and ewma > self.min_error_rate:
            alarm, raised = self._error_rate(ewma, now)
            if raised is not None:
                found = (*found, raised)
        self.error_rate_alarm = alarm

        self.total_calls += 1
        if not ok:
            self.total_errors += 1
        # Slide the window (both deques hold the last ``window`` calls), keeping running
        # sums; they are recomputed exactly once per window of calls.
        window = self.window
        total, squares = self._sum, self._sumsq
        errors = self._errors
        if calls == window:
            old = durations[0]
            total -= old
            squares -= old * old
            self._window_errors -= errors[0]
        durations.append(duration)
        errors.append(not ok)
        self._window_errors += not ok
        self._appends += 1
        if self._appends % window == 0:
            total = math.fsum(durations)
            squares = math.fsum(map(operator.mul, durations, durations))  # no generator
        else:
            total += duration
            squares += duration * duration
        self._sum, self._sumsq = total, squares
        self._since_slow = 0 if slow else self._since_slow + 1
        if found:
            self._anomalies.extend(found)
            self.anomalies_detected += len(found)
        return found

    def _error_rate(self, ewma: float, now: float) -> tuple[bool, Anomaly | None]:
        """Whether the EWMA is past its control limit, and the anomaly when the alarm
        starts (``record`` asks only once the EWMA is above ``min_error_rate``)."""
        reference, reference_errors = self._baseline()
        observed = reference_errors / reference if reference else 0.0
        base = min(max(observed, self.min_error_rate), 0.999)
        limit = ewma_upper_limit(base, self.ewma_alpha, self.ewma_limit)
        alarm = ewma > limit
        if not alarm or self.error_rate_alarm:
            return alarm, None
        sigma_rate = (limit - base) / self.ewma_limit
        return True, Anomaly("error_rate", now, ewma, limit, (ewma - base) / sigma_rate)

    def _baseline(self) -> tuple[int, int]:
        """The error baseline: the calls of the window before its most recent ``span``
        ones, and how many of them failed."""
        errors = self._errors
        calls = len(errors) - self._span
        if calls <= 0:
            return 0, 0
        recent = sum(itertools.islice(reversed(errors), self._span))
        return calls, self._window_errors - recent

    def snapshot(self) -> StatsSnapshot:
        durations = list(self._durations)
        errors = self._window_errors  # kept as calls come and go (record)
        calls = len(durations)
        return StatsSnapshot(
            total_calls=self.total_calls,
            total_errors=self.total_errors,
            window_size=self.window,
            window_calls=calls,
            window_errors=errors,
            success_rate=(calls - errors) / calls if calls else 1.0,
            error_rate=errors / calls if calls else 0.0,
            mean_response_time=fmean(durations) if durations else 0.0,
            p95_response_time=percentile(durations, 95.0),
            last_response_time=durations[-1] if durations else None,
            error_rate_ewma=self.error_rate_ewma,
            latency_alarm=self.latency_alarm,
            error_rate_alarm=self.error_rate_alarm,
            anomalies_detected=self.anomalies_detected,
            recent_anomalies=tuple(self._anomalies),
        )
