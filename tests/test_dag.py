"""The DAG progress state machine: triggers, when-skips, failFast, and resume rebuild."""

from __future__ import annotations

import pytest

from devskyy.core.dag import FAIL_FAST, Advance, DagError, DagProgress, StepNode, nodes_of
from devskyy.model.manifests import Trigger, Workflow
from devskyy.model.runs import StepEvent, StepStatus

S = StepStatus


def node(name: str, *needs: str, trigger: Trigger = Trigger.ALL_SUCCEEDED) -> StepNode:
    return StepNode(name, tuple(needs), trigger)


def run_ok(dag: DagProgress, name: str) -> None:
    dag.start(name)
    dag.succeed(name)


def run_fail(dag: DagProgress, name: str) -> None:
    dag.start(name)
    dag.fail(name, "boom")


def statuses(dag: DagProgress) -> dict[str, str]:
    return {n: p.status.value for n, p in dag.snapshot().items()}


def test_roots_are_ready_and_dependents_wait() -> None:
    dag = DagProgress([node("a"), node("b"), node("c", "a", "b")])
    assert dag.advance() == Advance(ready=("a", "b"))
    assert statuses(dag) == {"a": "ready", "b": "ready", "c": "pending"}
    run_ok(dag, "a")
    assert dag.advance() == Advance()
    run_ok(dag, "b")
    assert dag.advance() == Advance(ready=("c",))
    run_ok(dag, "c")
    assert dag.done
    assert dag.succeeded
    assert dag.advance() == Advance()


def test_failure_skips_all_succeeded_dependents_transitively() -> None:
    dag = DagProgress([node("a"), node("b", "a"), node("c", "b")], fail_fast=False)
    dag.advance()
    run_fail(dag, "a")
    assert dag.advance() == Advance(skipped=(("b", "needs failed: a"), ("c", "needs skipped: b")))
    assert dag.done
    assert not dag.succeeded
    assert dag.progress("c").reason == "needs skipped: b"


def test_any_failed_runs_only_when_a_need_failed() -> None:
    steps = [
        node("reserve"),
        node("pay", "reserve"),
        node("release", "pay", trigger=Trigger.ANY_FAILED),
    ]
    failing = DagProgress(steps)
    failing.advance()
    run_ok(failing, "reserve")
    assert failing.advance().ready == ("pay",)
    run_fail(failing, "pay")
    assert failing.advance() == Advance(ready=("release",))
    run_ok(failing, "release")
    assert statuses(failing) == {"reserve": "succeeded", "pay": "failed", "release": "succeeded"}

    passing = DagProgress(steps)
    passing.advance()
    run_ok(passing, "reserve")
    passing.advance()
    run_ok(passing, "pay")
    assert passing.advance() == Advance(
        skipped=(("release", "none of its needs failed (trigger any_failed)"),)
    )
    assert passing.succeeded


def test_always_runs_after_needs_finish_whatever_the_outcome() -> None:
    dag = DagProgress([node("a"), node("b"), node("cleanup", "a", "b", trigger=Trigger.ALWAYS)])
    dag.advance()
    run_fail(dag, "a")
    # b is still running: cleanup waits for every need to finish.
    assert dag.advance() == Advance()
    run_ok(dag, "b")
    assert dag.advance() == Advance(ready=("cleanup",))


def test_always_runs_after_skipped_needs_too() -> None:
    dag = DagProgress([node("a"), node("b", "a"), node("cleanup", "b", trigger=Trigger.ALWAYS)])
    dag.advance()
    run_fail(dag, "a")
    assert dag.advance() == Advance(ready=("cleanup",), skipped=(("b", "needs failed: a"),))


def test_when_false_skip_propagates_to_all_succeeded_dependents() -> None:
    dag = DagProgress(
        [node("a"), node("b", "a"), node("c", "a", trigger=Trigger.ALWAYS)], fail_fast=True
    )
    dag.advance()
    dag.skip("a", "when is false")
    assert dag.advance() == Advance(ready=("c",), skipped=(("b", "needs skipped: a"),))
    run_ok(dag, "c")
    # Skips are not failures: the run succeeds.
    assert dag.succeeded


def test_fail_fast_stops_new_steps_but_not_compensation() -> None:
    dag = DagProgress(
        [
            node("a"),
            node("slow"),
            node("after_slow", "slow"),
            node("undo", "a", trigger=Trigger.ANY_FAILED),
            node("cleanup", "after_slow", trigger=Trigger.ALWAYS),
        ],
        fail_fast=True,
    )
    assert dag.advance().ready == ("a", "slow")
    dag.start("slow")
    run_fail(dag, "a")
    assert dag.advance() == Advance(ready=("undo",))
    # The running step finishes; its dependent is not launched after the failure.
    dag.succeed("slow")
    assert dag.advance() == Advance(ready=("cleanup",), skipped=(("after_slow", FAIL_FAST),))


def test_continue_mode_keeps_launching_independent_steps() -> None:
    dag = DagProgress([node("a"), node("slow"), node("after_slow", "slow")], fail_fast=False)
    dag.advance()
    dag.start("slow")
    run_fail(dag, "a")
    dag.succeed("slow")
    assert dag.advance() == Advance(ready=("after_slow",))


def test_retry_wait_counts_attempts() -> None:
    dag = DagProgress([node("a")])
    dag.advance()
    assert dag.start("a") == 1
    dag.retry_wait("a", at=12.5)
    assert dag.progress("a").status is S.RETRY_WAIT
    assert dag.progress("a").retry_at == 12.5
    assert dag.in_flight() == ("a",)
    assert dag.start("a") == 2
    dag.succeed("a")
    assert dag.progress("a").attempts == 2
    assert dag.progress("a").retry_at is None


def test_illegal_moves_are_refused_with_the_state() -> None:
    dag = DagProgress([node("a"), node("b", "a")])
    with pytest.raises(DagError, match="step 'b' is pending, not ready or retry_wait"):
        dag.start("b")
    dag.advance()
    with pytest.raises(DagError, match="step 'a' is ready, not running"):
        dag.succeed("a")
    with pytest.raises(DagError, match="unknown step 'zz'"):
        dag.start("zz")


def test_bad_graphs_are_refused() -> None:
    with pytest.raises(DagError, match="needs unknown step 'x'"):
        DagProgress([node("a", "x")])
    with pytest.raises(DagError, match="step cycle: a -> c -> b -> a"):
        DagProgress([node("a", "c"), node("b", "a"), node("c", "b")])
    with pytest.raises(DagError, match="duplicate step names"):
        DagProgress([node("a"), node("a")])


def test_a_long_chain_is_fine() -> None:
    names = [f"s{i}" for i in range(3000)]
    dag = DagProgress([node(n, *names[i - 1 : i]) for i, n in enumerate(names)])
    for name in names:
        assert dag.advance().ready == (name,)
        run_ok(dag, name)
    assert dag.succeeded


def test_restore_keeps_outcomes_and_requeues_in_flight_steps() -> None:
    steps = [node("a"), node("b", "a"), node("c", "a"), node("d", "b", "c")]
    events = [
        StepEvent("a", S.RUNNING, 1, 1.0),
        StepEvent("a", S.SUCCEEDED, 1, 2.0),
        StepEvent("b", S.RUNNING, 1, 2.0),
        StepEvent("c", S.RUNNING, 1, 2.0),
        StepEvent("c", S.RETRY_WAIT, 1, 3.0, error="flaky", retry_at=5.0),
        StepEvent("c", S.RUNNING, 2, 5.0),
        StepEvent("b", S.SUCCEEDED, 1, 5.5),
    ]
    dag = DagProgress.restore(steps, events)
    assert statuses(dag) == {"a": "succeeded", "b": "succeeded", "c": "pending", "d": "pending"}
    assert dag.attempts("c") == 2
    assert dag.advance() == Advance(ready=("c",))
    assert dag.start("c") == 3
    dag.succeed("c")
    assert dag.advance() == Advance(ready=("d",))


def test_restore_keeps_failures_for_fail_fast_and_compensation() -> None:
    steps = [node("a"), node("b"), node("b2", "b"), node("undo", "a", trigger=Trigger.ANY_FAILED)]
    events = [
        StepEvent("a", S.RUNNING, 1, 1.0),
        StepEvent("b", S.RUNNING, 1, 1.0),
        StepEvent("a", S.FAILED, 1, 2.0, error="boom"),
    ]
    dag = DagProgress.restore(steps, events, fail_fast=True)
    assert dag.failed_any
    assert dag.advance() == Advance(ready=("b", "undo"))


def test_restore_of_a_finished_run_is_done() -> None:
    events = [StepEvent("a", S.RUNNING, 1, 1.0), StepEvent("a", S.SUCCEEDED, 1, 2.0)]
    dag = DagProgress.restore([node("a")], events)
    assert dag.done
    assert dag.advance() == Advance()
    with pytest.raises(DagError, match="event for unknown step 'zz'"):
        DagProgress.restore([node("a")], [StepEvent("zz", S.RUNNING, 1, 1.0)])


def test_from_workflow_reads_needs_triggers_and_fail_fast() -> None:
    wf = Workflow.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Workflow",
            "metadata": {"name": "w"},
            "spec": {
                "failFast": False,
                "steps": [
                    {"name": "a", "agent": "x"},
                    {"name": "b", "agent": "x", "needs": ["a"], "trigger": "always"},
                ],
            },
        }
    )
    assert nodes_of(wf) == (node("a"), node("b", "a", trigger=Trigger.ALWAYS))
    assert DagProgress.from_workflow(wf).fail_fast is False
