"""The pure statistics behind agent tracking: percentiles, z-scores, EWMA limits."""

from __future__ import annotations

import math
import random

import pytest

from devskyy.core.stats import CallTracker, ewma_upper_limit, percentile, zscore


def test_percentile_interpolates_linearly() -> None:
    assert percentile([], 95) == 0.0
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(i) for i in range(1, 101)], 95) == pytest.approx(95.05)
    with pytest.raises(ValueError, match=r"^percentile must be between 0 and 100, not 101$"):
        percentile([1.0], 101)


def test_zscore_floors_sigma() -> None:
    assert zscore(1.2, [1.0] * 10) == pytest.approx(4.0)
    assert zscore(5.0, [1.0, 3.0]) == pytest.approx(3.0)
    assert zscore(1.0, []) == 0.0


def test_ewma_limit_formula() -> None:
    assert ewma_upper_limit(0.05, 0.1, 3.0) == pytest.approx(
        0.05 + 3 * math.sqrt(0.1 / 1.9 * 0.0475)
    )
    assert ewma_upper_limit(0.05, 0.1, 3.0) == pytest.approx(0.2)


def test_no_detection_before_min_samples() -> None:
    tracker = CallTracker(min_samples=20)
    for _ in range(19):
        assert tracker.record(1.0, True, 0.0) == ()
    assert tracker.record(100.0, False, 0.0) == ()
    assert tracker.snapshot().anomalies_detected == 0


def test_latency_alarm_clears_after_five_normal_calls() -> None:
    tracker = CallTracker()
    for _ in range(30):
        tracker.record(1.0, True, 0.0)
    (anomaly,) = tracker.record(2.0, True, 5.0)
    assert anomaly.kind == "latency"
    assert anomaly.at == 5.0
    assert tracker.latency_alarm
    for _ in range(4):
        tracker.record(1.0, True, 0.0)
    assert tracker.latency_alarm
    tracker.record(1.0, True, 0.0)
    assert not tracker.latency_alarm


def test_running_sums_match_a_full_recomputation() -> None:
    tracker = CallTracker(window=7)
    values = [0.1 * (i % 13) + 1e-3 * i for i in range(500)]
    for value in values:
        tracker.record(value, True, 0.0)
    snap = tracker.snapshot()
    assert snap.window_calls == 7
    assert snap.mean_response_time == pytest.approx(sum(values[-7:]) / 7)


def test_a_steady_error_rate_becomes_the_baseline() -> None:
    tracker = CallTracker()
    alarms = 0
    for i in range(400):
        tracker.record(1.0, i % 4 != 0, 0.0)
        alarms += tracker.error_rate_alarm
    # 25% errors all along: once the baseline has it, the chart stays quiet.
    assert not tracker.error_rate_alarm
    assert tracker.snapshot().error_rate == 0.25


def test_invalid_trackers() -> None:
    with pytest.raises(ValueError, match=r"^window must be at least 1, not 0$"):
        CallTracker(window=0)
    with pytest.raises(ValueError, match=r"^ewma_alpha must be in \(0, 1\], not 0.0$"):
        CallTracker(ewma_alpha=0.0)


@pytest.mark.parametrize(("window", "alpha"), [(100, 0.1), (25, 0.1), (10, 0.1), (5, 0.5)])
def test_error_rate_baseline_is_the_window_before_its_recent_calls(
    window: int, alpha: float
) -> None:
    """The baseline the error-rate limit starts from: the calls of the window before its
    most recent ``round(2 / alpha) - 1`` ones (none when the window is not longer)."""
    tracker = CallTracker(window=window, ewma_alpha=alpha, min_samples=1)
    span = round(2 / alpha) - 1
    calls: list[bool] = []
    for i in range(300):
        ok = (i * 7919) % 13 > (3 if i < 150 else 9)  # an error episode in the second half
        tracker.record(0.01, ok, float(i))
        calls.append(not ok)
        kept = calls[-window:]
        before = kept[: max(0, len(kept) - span)]
        assert tracker._baseline() == (len(before), sum(before)), i


@pytest.mark.parametrize("z_threshold", [3.0, 0.5, 0.0, -0.5])
def test_latency_anomalies_are_the_calls_whose_zscore_passes_the_threshold(
    z_threshold: float,
) -> None:
    """The tracker flags exactly the calls a plain z-score of the window before each call
    flags, fast calls included when the threshold is below zero."""
    rng = random.Random(7)
    tracker = CallTracker(window=30, min_samples=10, z_threshold=z_threshold)
    history: list[float] = []
    flagged, expected = [], []
    for i in range(300):
        duration = rng.choice([1.0, 1.0, 1.1, 0.9, 5.0]) * (1 + rng.random() / 10)
        window = history[-30:]
        if len(window) >= 10 and zscore(duration, window) > z_threshold:
            expected.append(i)
        if tracker.record(duration, True, float(i)):
            flagged.append(i)
        history.append(duration)
    assert flagged == expected
    assert expected  # the sequence does have anomalies to find
