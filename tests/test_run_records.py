"""The per-step records' hand-written constructors agree with their dataclass fields."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from devskyy.model.runs import StepEvent, StepRecord, StepStatus


@pytest.mark.parametrize("cls", [StepEvent, StepRecord])
def test_the_constructor_takes_every_field_in_order_with_its_default(cls: type) -> None:
    fields = dataclasses.fields(cls)
    params = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in params] == [f.name for f in fields]
    for param, field in zip(params, fields, strict=True):
        assert param.default == (
            inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
        ), field.name


def test_records_stay_frozen_values() -> None:
    record = StepRecord("scan", StepStatus.RUNNING, 1, 10.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = StepStatus.FAILED  # type: ignore[misc]
    done = dataclasses.replace(record, status=StepStatus.SUCCEEDED, finished_at=11.5)
    assert (record.status, done.status, done.started_at, done.finished_at) == (
        StepStatus.RUNNING,
        StepStatus.SUCCEEDED,
        10.0,
        11.5,
    )
    assert record == StepRecord(name="scan", status=StepStatus.RUNNING, attempts=1, started_at=10.0)
    assert record != done
    event = StepEvent("scan", StepStatus.SKIPPED, 0, 3.0, error="when is false")
    assert dataclasses.asdict(event) == {
        "step": "scan",
        "status": StepStatus.SKIPPED,
        "attempt": 0,
        "at": 3.0,
        "error": "when is false",
        "retry_at": None,
        "started_at": None,
        "worker": None,
    }
    assert hash(event) == hash(StepEvent("scan", StepStatus.SKIPPED, 0, 3.0, "when is false"))
