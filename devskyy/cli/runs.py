"""``devskyy run`` and ``devskyy runs list|show|resume``: workflow runs from the shell.

``run`` opens the runtime with ``devskyy.runtime.system.open_system``, starts the agents
the workflow calls (those of its first steps before the run, the others while the first
steps run: ``devskyy.runtime.agent_start``), runs the workflow and prints one line per
step change as it happens (coloured on a terminal, plain otherwise), then a summary. With
``-o json`` it prints only the final run record: ``id``, ``status`` and ``steps`` (each
with ``status``, ``attempts``, ``duration`` and ``output``). A failed run exits 1.

``runs list`` / ``runs show`` only read the run store (no agent is started; a missing
SQLite file reads as empty). A ``running`` run whose process is gone shows as
``interrupted``; ``runs resume ID`` finishes it without re-running the steps that
succeeded; it starts the agents of the run's workflow (a task's: those its required
capabilities select) before it goes on.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from devskyy.adapters.clock import SystemClock
from devskyy.adapters.run_store import MemoryRunStore, RunStore, SqlRunStore
from devskyy.cli._common import (
    CliContext,
    emit,
    error_boundary,
    live_terminal,
    output_option,
    table,
    use_color,
)
from devskyy.cli._state import read_engine
from devskyy.cli.completion import complete_run_ids, complete_workflows
from devskyy.cli.worker import RunnerChoice, runner_options
from devskyy.core.tasks import TASK_PREFIX
from devskyy.core.timefmt import rfc3339, times_in
from devskyy.errors import RunnerLost
from devskyy.model.manifests import Workflow
from devskyy.model.runs import RunRecord, StepEvent, StepRecord, StepStatus
from devskyy.runtime import progress
from devskyy.runtime.agent_start import called_by, task_agents, waves
from devskyy.runtime.progress import StepProgress
from devskyy.runtime.step_context import StepRef
from devskyy.runtime.system import System, open_system
from devskyy.runtime.workflows import effective_status

FORMATS = ("table", "json", "yaml")
_COLORS = {
    "running": "cyan",
    "retry_wait": "yellow",
    "succeeded": "green",
    "failed": "red",
    "skipped": "bright_black",
    "interrupted": "magenta",
    "cancelled": "magenta",
}


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value``: the value as JSON when it parses (``3``, ``true``, ``[1]``), else text."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r} is not key=value", param_hint="-p")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def _typed(workflow: Workflow, params: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """Each ``-p`` value: the text itself for a ``string`` param (``order_id=12345``
    stays ``"12345"``, as with ``argo submit -p``), else the JSON-parsed value."""
    declared = workflow.spec.params
    out: dict[str, Any] = {}
    for key, (raw, parsed) in params.items():
        spec = declared.get(key)
        out[key] = raw if spec is not None and spec.type == "string" else parsed
    return out


def _paint(text: str, status: str, color: bool) -> str:
    return click.style(text, fg=_COLORS.get(status)) if color else text


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


class Progress:
    """Prints one line per step change (the engine's ``on_step`` listener).

    With ``live`` (a terminal that understands cursor movement) it also keeps one line per
    running step at the bottom, redrawn in place as the step's agent reports progress
    ("3/5 checks on 7 files (60%)"); the step change lines scroll above it. Piped output
    and ``-o json`` never get it: their output stays one line per change, or none.

    Inside the event loop the text is collected and written in one piece: in the loop
    tick after the first line, or, when the last write was under ``FLUSH_SECONDS`` ago,
    once that time is up (a loop timer). A 1,000-wide fan-out announces its steps in
    one write, not 1,000, a fast chain writes twenty times a second at most, and a
    terminal sees every change within ``FLUSH_SECONDS``. Called from another thread or
    with no loop running (an agent's report from a worker thread, a direct call), it
    writes at once, after whatever was collected, so the order never changes. ``flush``
    writes what is left: call it before printing anything else.
    """

    REDRAW_SECONDS = 0.1  # at most ten redraws a second, however often agents report
    FLUSH_SECONDS = 0.05  # collected lines wait at most this long (below what one notices)

    def __init__(
        self,
        color: bool,
        *,
        live: bool = False,
        write: Callable[[str], None] | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.color = color
        self.live = live
        self.write = write or (lambda text: click.echo(text, nl=False))
        self.monotonic = monotonic or SystemClock().monotonic
        self.running: dict[str, str] = {}
        self.reported: set[str] = set()
        self.drawn = 0
        self.last_draw = float("-inf")
        self.lock = threading.Lock()  # an agent may report from a worker thread
        # Text, or a step change whose line is made when written (in one pass per write:
        # a 1,000-step run's lines are made 40 at a time, not one per engine turn).
        self.pending: list[str | StepRecord] = []
        self.queued = False  # a write of the collected text is queued on the loop
        self.last_write = float("-inf")
        self.marks: dict[str, str] = {}  # status -> its padded (painted) column, made once

    def flush(self) -> None:
        """Write the text collected so far (one write), if any."""
        with self.lock:
            self.queued = False
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            line = self._line
            text = "".join([p if isinstance(p, str) else line(p) for p in self.pending])
            self.pending.clear()
            self.last_write = self.monotonic()
            self.write(text)

    def _due(self, loop: asyncio.AbstractEventLoop) -> None:
        """The tick after the first collected line: write, or wait out the window."""
        with self.lock:
            if not self.queued:  # flushed meanwhile
                return
            wait = self.last_write + self.FLUSH_SECONDS - self.monotonic()
            if wait <= 0:
                self.queued = False
                self._flush()
                return
        loop.call_later(wait, self.flush)

    def _settle(self) -> None:
        """After a change (lock held): queue a flush for this tick, or write now."""
        if not self.pending or self.queued:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a worker thread or no loop: nothing would flush it later
            self._flush()
            return
        self.queued = True
        loop.call_soon(self._due, loop)

    def _clear(self) -> None:
        if self.drawn:
            # To the start of the first live line, then erase to the end of the screen.
            self.pending.append(f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = 0

    def _mark(self, status: str) -> str:
        mark = self.marks.get(status)
        if mark is None:
            mark = self.marks[status] = _paint(f"{status:<10}", status, self.color)
        return mark

    def _draw(self) -> None:
        mark = self._mark("running")
        for name, text in self.running.items():
            self.pending.append(f"  {name:<20} {mark} {text}\n")
        self.drawn = len(self.running)
        self.last_draw = self.monotonic()

    def on_progress(self, ref: StepRef | None, progress: StepProgress) -> None:
        """An agent's report (``devskyy.runtime.progress``): redraw that step's line."""
        if not self.live or ref is None:
            return
        with self.lock:
            # A fast agent may report before the engine has announced its step: the
            # report is kept, and "running" (announced next) does not overwrite it.
            self.running[ref.step] = str(progress)
            first = ref.step not in self.reported  # the first report shows at once
            self.reported.add(ref.step)
            if not first and self.monotonic() - self.last_draw < self.REDRAW_SECONDS:
                return
            self._clear()
            self._draw()
            self._settle()

    def __call__(self, run: RunRecord, step: StepRecord) -> None:
        # Twice per step of every run: the checks of _clear and _settle come first here.
        with self.lock:
            if self.drawn:
                self._clear()
            self.pending.append(step)  # its line is made when written (_flush)
            if self.live:  # the running steps' lines at the bottom: a terminal's alone
                if step.status is not StepStatus.RUNNING:
                    self.running.pop(step.name, None)
                    self.reported.discard(step.name)
                elif step.name not in self.reported:
                    self.running[step.name] = f"attempt {step.attempts}"
                self._draw()
            if not self.queued:
                self._settle()

    def _line(self, step: StepRecord) -> str:
        """The line of one step change."""
        status: str = step.status  # a StrEnum: its text, without the .value property
        detail = ""
        if status == "running":
            detail = f"attempt {step.attempts}"
        elif status == "retry_wait":
            detail = f"attempt {step.attempts} failed: {step.error}; retrying"
        elif status in ("succeeded", "failed"):
            plural = "s" if step.attempts != 1 else ""
            detail = f"{step.attempts} attempt{plural}, {_seconds(step.duration)}"
            if status == "failed" or headline(step):
                detail += f": {_detail(step)}"
        elif status == "skipped" and step.reason:
            detail = step.reason
        mark = self._mark(status)
        return f"  {step.name:<20} {mark} {detail}".rstrip() + "\n"


def _flushed(listener: Progress | None) -> None:
    """The step lines still collected are written before anything else is printed."""
    if listener is not None:
        listener.flush()


def _ignore(_ref: StepRef | None, _progress: StepProgress) -> None:
    """-o json|yaml: progress reports are dropped (stdout is the final record alone)."""


def headline(step: StepRecord) -> str:
    """The one-line summary an agent may put in its output under ``headline``."""
    output = step.output if isinstance(step.output, dict) else {}
    text = output.get("headline")
    return text if isinstance(text, str) else ""


def _detail(step: StepRecord) -> str:
    """The error and, when known, why it was final: ``Boom: x (attempt 3 of 3 failed)``;
    for a step that succeeded, its agent's headline."""
    if step.status.value == "succeeded":
        return headline(step)
    if step.error and step.reason:
        return f"{step.error} ({step.reason})"
    return step.error or step.reason or ""


_TIMES = frozenset({"created_at", "started_at", "finished_at", "heartbeat_at"})


def _record_dict(record: RunRecord, now: float) -> dict[str, Any]:
    """The whole run (steps with their outputs), times in RFC 3339."""
    data: dict[str, Any] = times_in(record.to_dict(), _TIMES)
    data["status"] = effective_status(record, now).value
    return data


def _summary_dict(record: RunRecord, now: float) -> dict[str, Any]:
    """One run of ``runs list``: what happened, without the steps' outputs."""
    return {
        "id": record.id,
        "workflow": record.workflow,
        "status": effective_status(record, now).value,
        "params": record.params,
        "created_at": rfc3339(record.created_at),
        "started_at": rfc3339(record.started_at),
        "finished_at": rfc3339(record.finished_at),
        "duration": record.duration,
        "error": record.error,
        "steps_total": len(record.steps),
        "steps_succeeded": sum(1 for s in record.steps if s.status.value == "succeeded"),
    }


def _finish(record: RunRecord, output: str, *, now: float) -> None:
    """Print the final record (or a summary) and exit 1 when the run failed."""
    status = effective_status(record, now).value
    if output == "table":  # a summary line: no dict of every step's record to build
        color = use_color()
        duration = _seconds(record.duration)
        click.echo(f"run {record.id} {_paint(status, status, color)} in {duration}")
        if record.error:
            click.echo(f"  {record.error}")
    else:
        emit(_record_dict(record, now), output)
    if status != "succeeded":
        raise SystemExit(1)


def _interrupted(run_id: str) -> None:
    """Tell the person who pressed Ctrl-C which run stopped and how to finish it."""
    click.echo(
        f"run {run_id} interrupted; `devskyy runs resume {run_id}` finishes it "
        "(steps that succeeded are not run again)",
        err=True,
    )


def _called_by(system: System, workflow: Workflow) -> set[str]:
    """The agents a workflow's steps call (by name or capability), with their
    dependencies: the only ones ``devskyy run`` starts."""
    # The live view's snapshot: the store's documents are parsed once per run, not twice.
    return called_by(workflow, system.live.current().agents)


async def _start_agents(system: System, only: set[str] | None = None) -> None:
    """Build the applied agents (or ``only`` these); one that fails is reported, its
    steps will fail."""
    summary = await system.registry.discover_and_register_all_agents(only)
    _report_failures(system, summary.get("errors", {}))


def _report_failures(
    system: System, errors: dict[str, str], listener: Progress | None = None
) -> None:
    """``warning: agent "x" did not start: REASON`` on stderr for each agent that failed
    (after the step lines collected so far).

    The reasons are worded as ``validate --check-agents`` does, at ``file:line:col`` in
    the tree the live revision was applied from when it is still there.
    """
    if not errors:
        return
    _flushed(listener)
    # Only when an agent failed: explaining reads manifests (YAML) again.
    from devskyy.runtime.agent_failures import explain_failures  # noqa: PLC0415

    revisions = system.state.revisions()
    tree = Path(revisions[-1].source) if revisions else None
    for name, reasons in explain_failures(errors, system.state.live(), tree).items():
        for reason in reasons:
            click.echo(f'warning: agent "{name}" did not start: {reason}', err=True)


def _cluster_line(system: System) -> None:
    """Where attempts run, when a Dask cluster runs them (the dashboard to watch it)."""
    if system.cluster is not None:
        link = system.cluster.dashboard or "none"
        click.echo(f"dask scheduler {system.cluster.address}, dashboard {link}", err=True)


async def _drive(
    go: Callable[..., Awaitable[RunRecord]], run: str | RunRecord, listener: Progress | None
) -> RunRecord:
    """``go(run, on_step=listener)`` (execute or resume; the run's id, or the record just
    created) with progress reports shown; Ctrl-C or a lost Dask scheduler says how to
    resume."""
    try:
        with progress.listening(listener.on_progress if listener else _ignore):
            return await go(run, on_step=listener)
    except (asyncio.CancelledError, RunnerLost):  # Ctrl-C; the Dask scheduler gone
        _flushed(listener)
        _interrupted(run if isinstance(run, str) else run.id)
        raise
    finally:  # the collected step lines before any other line or error
        _flushed(listener)


async def _run(
    url: str,
    workflow: str,
    params: dict[str, tuple[str, Any]],
    output: str,
    choice: RunnerChoice = RunnerChoice(),  # noqa: B008 - frozen
) -> None:
    system = await open_system(url, start_agents=False, **choice.open_options())
    _cluster_line(system)
    try:
        engine = system.workflows
        assert engine is not None
        # Not applied, bad params: clear errors before any agent starts.
        applied = engine.workflow(workflow)
        record = engine.create(workflow, _typed(applied, params))
        first, later = waves(applied, system.live.current().agents)
        await _start_agents(system, first)
        listener = None
        if output == "table":
            click.echo(f"run {record.id}: workflow {workflow}")
            listener = Progress(use_color(), live=live_terminal())
        # The other agents start while the first steps run; a step whose agent is still
        # starting waits for it, and one that failed is reported before its step fails.
        system.registry.start_later(
            later, lambda errors: _report_failures(system, errors, listener)
        )
        final = await _drive(engine.execute, record, listener)  # not read back
        _finish(final, output, now=system.clock.now())
    finally:
        await system.close()


async def _resume(
    url: str,
    run_id: str,
    output: str,
    choice: RunnerChoice = RunnerChoice(),  # noqa: B008 - frozen
) -> None:
    system = await open_system(url, start_agents=False, **choice.open_options())
    _cluster_line(system)
    try:
        engine = system.workflows
        assert engine is not None
        # Only the agents of the run's workflow start, as for `devskyy run`.
        record = engine.store.get(run_id)
        if record.workflow.startswith(TASK_PREFIX):
            # A task's workflow is compiled over the registered agents: its agents
            # start first, then the checks and the compilation.
            await _start_agents(system, task_agents(record.params, system.live.current().agents))
            record, _ = engine.resumable(run_id)
        else:
            record, workflow = engine.resumable(run_id)  # nothing to resume: say so first
            await _start_agents(system, _called_by(system, workflow))
        listener = None
        if output == "table":
            done = sum(1 for s in record.steps if s.status.value == "succeeded")
            click.echo(
                f"resuming run {run_id}: workflow {record.workflow} "
                f"({done} of {len(record.steps)} steps already succeeded)"
            )
            listener = Progress(use_color(), live=live_terminal())
        final = await _drive(engine.resume, run_id, listener)
        _finish(final, output, now=system.clock.now())
    finally:
        await system.close()


@click.command()
@click.argument("workflow", shell_complete=complete_workflows)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A workflow parameter; the text as is for a string param, else parsed as JSON.",
)
@output_option(*FORMATS)
@runner_options
@click.pass_obj
@error_boundary
def run(
    obj: CliContext,
    workflow: str,
    params: tuple[str, ...],
    output: str,
    runner: str,
    scheduler: str | None,
) -> None:
    """Run WORKFLOW (applied with `devskyy apply`) and wait for it to finish."""
    values = {key: (p.partition("=")[2], value) for p in params for key, value in [parse_param(p)]}
    asyncio.run(_run(obj.url(), workflow, values, output, RunnerChoice.of(runner, scheduler)))


@click.group()
def runs() -> None:
    """List, show and resume workflow runs."""


@contextmanager
def _run_store(url: str) -> Iterator[RunStore]:
    """The run store, read-only: a SQLite file that does not exist reads as empty."""
    with read_engine(url) as engine:  # file: URIs (read-only openings) included
        yield MemoryRunStore() if engine is None else SqlRunStore(engine)


def _now() -> float:
    return SystemClock().now()


@runs.command("list")
@click.option(
    "--workflow",
    default=None,
    shell_complete=complete_workflows,
    help="Only runs of this workflow.",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@output_option(*FORMATS)
@click.pass_obj
@error_boundary
def list_runs(obj: CliContext, workflow: str | None, limit: int, output: str) -> None:
    """The newest runs first."""
    with _run_store(obj.url()) as store:
        records = store.list_runs(workflow=workflow, limit=limit)
    now = _now()
    data = [_summary_dict(r, now) for r in records]
    if output != "table":
        emit(data, output)  # a summary: `runs show ID` has the steps and their outputs
        return
    if not data:
        click.echo("no runs")
        return
    rows = []
    for record, item in zip(records, data, strict=True):
        done = sum(1 for s in record.steps if s.status.value == "succeeded")
        rows.append(
            [
                record.id,
                record.workflow,
                item["status"],
                f"{done}/{len(record.steps)}",
                _seconds(record.duration),
                record.error or "",
            ]
        )
    click.echo(table(rows, ["id", "workflow", "status", "succeeded", "duration", "error"]))


@runs.command("show")
@click.argument("run_id", metavar="ID", shell_complete=complete_run_ids)
@output_option(*FORMATS)
@click.pass_obj
@error_boundary
def show(obj: CliContext, run_id: str, output: str) -> None:
    """One run and its steps."""
    with _run_store(obj.url()) as store:
        record = store.get(run_id)
        workers = _attempt_workers(store.events(run_id))
    data = _record_dict(record, _now())
    if workers:  # attempts run by a distributed runner: where each ran
        data["attempts"] = workers
    if output != "table":
        emit(data, output)
        return
    click.echo(f"run:      {record.id}")
    click.echo(f"workflow: {record.workflow}")
    click.echo(f"status:   {data['status']}")
    click.echo(f"params:   {json.dumps(record.params, sort_keys=True)}")
    click.echo(f"duration: {_seconds(record.duration)}")
    if record.error:
        click.echo(f"error:    {record.error}")
    rows = [
        [
            s.name,
            s.status.value,
            str(s.attempts),
            _seconds(s.duration),
            _detail(s),
        ]
        for s in record.steps
    ]
    click.echo(table(rows, ["step", "status", "attempts", "duration", "detail"]))
    if workers:
        click.echo("")
        rows = [[w["step"], str(w["attempt"]), w["status"], w["worker"]] for w in workers]
        click.echo(table(rows, ["step", "attempt", "outcome", "worker"]))


def _attempt_workers(events: list[StepEvent]) -> list[dict[str, Any]]:
    """Each ended attempt and the worker that ran it, when any worker was recorded."""
    ended = [e for e in events if e.status.value not in {"running", "skipped"}]
    if not any(e.worker for e in ended):
        return []
    return [
        {"step": e.step, "attempt": e.attempt, "status": e.status.value, "worker": e.worker or "-"}
        for e in ended
    ]


@runs.command("resume")
@click.argument("run_id", metavar="ID", shell_complete=complete_run_ids)
@output_option(*FORMATS)
@runner_options
@click.pass_obj
@error_boundary
def resume(obj: CliContext, run_id: str, output: str, runner: str, scheduler: str | None) -> None:
    """Finish an interrupted run; steps that succeeded are not run again."""
    url = obj.url()
    with _run_store(url) as store:
        store.get(run_id)  # NotFound before any agent starts
    asyncio.run(_resume(url, run_id, output, RunnerChoice.of(runner, scheduler)))
