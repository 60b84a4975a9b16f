"""The GitOps daemon behind ``devskyy watch``: file events in, reconcile passes out.

File events are hints (docs/architecture.md). They are debounced (``core.debounce``), then one
full pass runs, never two at once:

1. in pull mode, fast-forward the checkout (``adapters.git_source``);
2. load and validate the whole tree: any problem rejects the change, logged with the
   same ``file:line:col`` lines as ``devskyy validate``, and the running system is left
   exactly as it was (the last good state keeps serving);
3. plan and apply in one transaction as a numbered revision (deletions only with
   ``prune``);
4. make the running agents match live state (``Registry.discover_and_register_all_agents``:
   new and changed agents are built and must initialize before they take traffic,
   unchanged agents keep their breakers and metrics);
5. hot-reload agents whose module source file changed (``Registry.reload``: in-flight
   calls finish on the old instance; an import error or a failed ``initialize()`` keeps
   the old one and is reported).

A periodic resync (``interval``) catches missed events and drift; SIGHUP forces one. A
verified push webhook (``request_push``) is a hint like a file event. The loop also wakes at
the next due time of the applied workflows' schedules (``runtime.scheduler``), which only a
lease holder fires.
SIGTERM/SIGINT stop the loop; the caller then drains background work
(``BackgroundTasks.drain``) and releases the store's daemon lease.

Crash-only: no input, file-system event or store error ends the daemon. A pass that fails
for any reason other than invalid manifests (the store, git, a bug) is logged with its
traceback, the last good state keeps running, and the next pass is retried after an
exponential backoff (``WatchSettings.retry``, 1 s doubling to 60 s, on the clock seam). Only
a signal (exit 0), a lost lease (``EXIT_LEASE_LOST``) and, at start, a refused lease
(``EXIT_LEASE_REFUSED``) or a broken store configuration (``EXIT_STORE_CONFIG``) end it.
The lease is renewed every third of its TTL, and every apply checks it in its own
transaction (``DaemonLease.fence``): a daemon that lost its lease never applies again.
``runtime.standby`` waits for the lease (``--standby``) and records a takeover.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devskyy.adapters.daemon_lock import DaemonLease, LeaseLost
from devskyy.adapters.git_source import GitError, GitSource
from devskyy.adapters.state_store import SqlStateStore
from devskyy.adapters.watcher import Watcher
from devskyy.core.debounce import Debounce, due, hint, next_wakeup
from devskyy.core.retry import RetryPolicy
from devskyy.errors import DevskyyError, ManifestError
from devskyy.model.plan import Action, Plan, Revision
from devskyy.runtime.reconciler import AppliedHook, Reconciler, load_tree
from devskyy.runtime.scheduler import Scheduler
from devskyy.runtime.standby import log_lease_error
from devskyy.runtime.system import System

log = logging.getLogger("devskyy.watch")

STOP = "\x00stop"
RESYNC = "\x00resync"
PUSH = "\x00push"  # a verified push webhook: a hint like a file event (debounced, coalesced)

# Exit codes of `devskyy watch` (docs/cli.md; deploy/devskyy-watch.service stops restarting
# on the ones a restart cannot fix).
EXIT_OK = 0  # stopped by SIGTERM/SIGINT after draining
EXIT_ERROR = 1  # an error at start (restarting may help: systemd retries)
EXIT_LEASE_REFUSED = 3  # another daemon holds the store's lease (without --standby)
EXIT_LEASE_LOST = 4  # this daemon's lease was taken over while it ran
EXIT_STORE_CONFIG = 5  # the store URL cannot be used (malformed, unknown driver)

PASS_RETRY = RetryPolicy(initial_interval=1.0, backoff_coefficient=2.0, maximum_interval=60.0)
"""Backoff between failed passes: 1, 2, 4 … 60 seconds."""


@dataclass(frozen=True)
class WatchSettings:
    """How the daemon watches and applies."""

    path: Path
    prune: bool = False
    debounce: float = 0.3
    max_wait: float = 2.0
    interval: float = 60.0
    git: GitSource | None = None
    retry: RetryPolicy = PASS_RETRY


@dataclass
class PassOutcome:
    """What one reconcile pass did (for logs and tests)."""

    reason: str
    revision: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    agents: dict[str, str] = field(default_factory=dict)
    reloaded: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    # What the pass changed ("update Agent/a") and the live resources the manifests no
    # longer name, which --prune would delete: the logs name them, not just counts.
    changed: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    finished_at: float | None = None  # epoch seconds (the clock's now())
    seconds: float = 0.0  # how long the pass took (monotonic)


def module_file(module_path: str) -> Path | None:
    """The source file of ``package.module:Class`` (without importing it when possible)."""
    name = module_path.split(":", 1)[0]
    loaded = sys.modules.get(name)
    origin = getattr(loaded, "__file__", None) if loaded else None
    if origin is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        origin = spec.origin if spec else None
    return Path(origin).resolve() if origin and origin.endswith(".py") else None


def _counts(plan: Plan) -> dict[str, int]:
    counts = {"created": 0, "updated": 0, "deleted": 0}
    names = {Action.CREATE: "created", Action.UPDATE: "updated", Action.DELETE: "deleted"}
    for change in plan.changes:
        if change.action in names:
            counts[names[change.action]] += 1
    return counts


class WatchDaemon:
    """One reconcile pass at a time over a manifest tree, driven by hints and a timer."""

    def __init__(
        self,
        system: System,
        settings: WatchSettings,
        watcher: Watcher,
        *,
        lease: DaemonLease | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.system = system
        self.scheduler = scheduler  # fires spec.schedules; only a lease holder has one
        self._next_fire: float | None = None  # wall time of the scheduler's next due time
        self.settings = settings
        self.watcher = watcher
        self.lease = lease
        hooks: list[AppliedHook] = []
        if system.security is not None:
            hooks.append(self._audit)
        # Each revision commits with its audit event (one transaction, issue 19.5).
        actor = "watch" if isinstance(system.state, SqlStateStore) else None
        self.reconciler = Reconciler(system.state, system.clock, hooks, audit_actor=actor)
        self.passes: list[PassOutcome] = []
        # Called with every finished pass (metrics); an observer must not raise.
        self.observers: list[Callable[[PassOutcome], None]] = []
        self._sources: dict[Path, set[str]] = {}
        if lease is not None:
            self.reconciler.fence = lease.fence
        self.failures = 0  # failed passes in a row (not rejections)
        self.retry_at: float | None = None  # monotonic time of the next retry, if any

    # -- one pass -----------------------------------------------------------------

    def _audit(self, revision: Revision, plan: Plan) -> None:
        # The event itself was written in the apply's transaction (audit_actor above);
        # the security manager only reloads roles and bindings.
        if self.system.security is not None:
            self.system.security.access.invalidate()

    def _live_revision(self) -> int | None:
        """The applied revision that keeps running after a rejected pass (None if unread)."""
        try:
            return self.system.state.current_revision()
        except Exception:  # crash-only: a log field and a gauge can do without it
            log.debug("live revision unreadable", exc_info=True)
            return None

    def _tree(self) -> Path:
        git = self.settings.git
        return git.checkout / self.settings.path if git else self.settings.path

    async def reconcile(self, reason: str, paths: frozenset[str] = frozenset()) -> PassOutcome:
        """Run one full pass; never raises for bad input (the outcome says what happened)."""
        outcome = PassOutcome(reason)
        started = self.system.clock.monotonic()
        try:
            await self._pass(outcome, paths)
        except ManifestError as exc:
            outcome.rejected = [str(p) for p in exc.problems]
            outcome.revision = self._live_revision()  # what keeps running, not "null"
            log.warning(
                "change rejected; the last good state keeps running",
                extra={"fields": {"reason": reason, "problems": outcome.rejected}},
            )
            for line in outcome.rejected:
                log.warning(line)
            self._succeeded()
        except LeaseLost:
            raise  # another daemon leads now: this one must stop, not retry
        except Exception as exc:  # crash-only: any failure is retried
            outcome.error = _summary(exc)
            self._failed(reason, exc)
        else:
            self._succeeded()
        outcome.seconds = self.system.clock.monotonic() - started
        outcome.finished_at = self.system.clock.now()
        self.passes.append(outcome)
        for observer in self.observers:
            try:
                observer(outcome)
            except Exception:  # an observer must not end the daemon
                log.exception("pass observer failed")
        await self._fire_schedules()  # a new revision may add, change or drop schedules
        return outcome

    def _succeeded(self) -> None:
        """A pass that applied, was in sync, or rejected bad input: no retry pending."""
        self.failures = 0
        self.retry_at = None

    def _failed(self, reason: str, exc: BaseException) -> None:
        self.failures += 1
        delay = self.settings.retry.base_delay(self.failures)
        self.retry_at = self.system.clock.monotonic() + delay
        fields: dict[str, Any] = {
            "reason": reason,
            "error": _summary(exc),
            "failures": self.failures,
            "retry_in": delay,
        }
        if not isinstance(exc, DevskyyError):
            # A bug or an unexpected store error: keep the whole story for the report.
            fields["traceback"] = "".join(traceback.format_exception(exc))
        log.error(
            f"pass failed; the last good state keeps running; retrying in {delay:g}s",
            extra={"fields": fields},
        )

    async def _pass(self, outcome: PassOutcome, paths: frozenset[str]) -> None:
        git_path = None
        if self.settings.git is not None:
            try:
                synced = await asyncio.to_thread(self.settings.git.sync)
            except GitError as exc:
                raise DevskyyError(str(exc)) from None
            git_path = self.settings.git.checkout
            log.info("git synced", extra={"fields": {"commit": synced.commit}})
        tree = self._tree()
        desired = await asyncio.to_thread(load_tree, tree)
        result = self.reconciler.apply_desired(
            desired, source=str(self.settings.path), prune=self.settings.prune, git_path=git_path
        )
        outcome.revision = result.live_revision
        outcome.counts = _counts(result.plan)
        outcome.changed = [
            f"{c.action.value} {c.key}" for c in result.plan if c.action is not Action.UNCHANGED
        ]
        outcome.orphans = [str(c.key) for c in result.plan.orphans]
        if result.revision is not None:
            log.info(
                f"applied revision {result.revision.number}: {', '.join(outcome.changed)}",
                extra={
                    "fields": {
                        "revision": result.revision.number,
                        **outcome.counts,
                        "changed": outcome.changed,
                    }
                },
            )
        else:
            log.info(
                "in sync: no changes",
                extra={"fields": {"reason": outcome.reason, "revision": result.live_revision}},
            )
        previous = self.passes[-1].orphans if self.passes else []
        if outcome.orphans and outcome.orphans != previous:  # once, not every resync
            log.warning(
                f"not in the manifests, kept (--prune would delete): {', '.join(outcome.orphans)}",
                extra={"fields": {"orphans": outcome.orphans}},
            )
        summary = await self.system.registry.discover_and_register_all_agents()
        outcome.agents = {
            name: state for name, state in summary.get("agents", {}).items() if state != "unchanged"
        }
        for name, error in summary.get("errors", {}).items():
            log.error("agent not updated", extra={"fields": {"agent": name, "error": error}})
        await self._reload_changed_code(paths, outcome)
        self._refresh_sources()

    async def _reload_changed_code(self, paths: frozenset[str], outcome: PassOutcome) -> None:
        changed = {Path(p).resolve() for p in paths if p.endswith(".py")}
        for source in sorted(changed):
            for name in sorted(self._sources.get(source, set())):
                if name in outcome.agents:  # just rebuilt from its new spec
                    continue
                result = await self.system.registry.reload(name)
                outcome.reloaded[name] = result["status"]
                if result["status"] == "reloaded":
                    log.info("agent reloaded", extra={"fields": {"agent": name}})
                else:
                    log.error(
                        "agent reload failed; the previous version keeps serving",
                        extra={"fields": {"agent": name, "error": result.get("error")}},
                    )

    def _refresh_sources(self) -> None:
        sources: dict[Path, set[str]] = {}
        for agent in self.system.live.current().agents.values():
            path = module_file(agent.spec.module)
            if path is not None:
                sources.setdefault(path, set()).add(agent.name)
        self._sources = sources
        self.watcher.watch_files(sources)

    # -- the loop -----------------------------------------------------------------

    def request_stop(self) -> None:
        self.watcher.queue.put_nowait(STOP)

    def request_resync(self) -> None:
        self.watcher.queue.put_nowait(RESYNC)

    def request_push(self) -> None:
        """A push webhook arrived: fetch and apply soon, coalesced with other hints."""
        self.watcher.queue.put_nowait(PUSH)

    def _schedule_wake(self, now: float) -> float:
        """The monotonic time of the next due schedule (the scheduler speaks wall time)."""
        if self._next_fire is None:
            return float("inf")
        return now + max(0.0, self._next_fire - self.system.clock.now())

    async def _fire_if_due(self) -> None:
        if self._next_fire is not None and self.system.clock.now() >= self._next_fire:
            await self._fire_schedules()

    async def _fire_schedules(self) -> None:
        """Fire what is due and note the next due time; never ends the daemon (but a lost
        lease, which the fence raises, does)."""
        if self.scheduler is None:
            return
        started = self.system.clock.now()
        try:
            await self.scheduler.tick()
            self._next_fire = await asyncio.to_thread(self.scheduler.next_due, started)
        except LeaseLost:
            raise
        except Exception:  # crash-only: retried at the next wake-up
            log.exception("firing schedules failed")
            self._next_fire = self.system.clock.now() + self.settings.retry.base_delay(1)

    async def run(self) -> None:
        """Reconcile now, then on every debounced hint, retry, resync or SIGHUP, until stopped.

        Returns when stopped (``STOP``); raises ``LeaseLost`` when another daemon took the
        lease. Nothing else ends it.
        """
        clock = self.system.clock
        s = self.settings
        # Watch before the first pass, so that nothing saved during it is missed.
        try:
            self.watcher.start()
        except Exception:  # no file events is degraded, not fatal
            log.exception(
                "cannot watch the tree; changes wait for the periodic resync",
                extra={"fields": {"path": str(s.path), "interval": s.interval}},
            )
        try:
            first = await self.reconcile("start")
            log.info(
                "watching",
                extra={"fields": {"path": str(s.path), "revision": first.revision}},
            )
            pending = Debounce()
            last_pass = clock.monotonic()
            last_beat = last_pass
            while True:
                now = clock.monotonic()
                wake = next_wakeup(pending, last_pass, s.interval, s.debounce, s.max_wait)
                if self.retry_at is not None:
                    wake = min(wake, self.retry_at)
                if self.lease is not None:
                    wake = min(wake, last_beat + self.lease.renew_every)
                wake = min(wake, self._schedule_wake(now))
                item = await self._next(max(0.0, wake - now))
                now = clock.monotonic()
                if item == STOP:
                    return
                if self.lease is not None and now - last_beat >= self.lease.renew_every:
                    await self._renew()
                    last_beat = now
                await self._fire_if_due()
                reason: str | None = None
                if item == RESYNC:
                    reason = "sighup"
                elif item is not None:
                    pending = hint(pending, item, now)
                    if due(pending, now, s.debounce, s.max_wait):
                        reason = "change"
                elif pending.pending and due(pending, now, s.debounce, s.max_wait):
                    reason = "change"
                elif self.retry_at is not None and now >= self.retry_at:
                    reason = "retry"
                elif not pending.pending and now - last_pass >= s.interval:
                    reason = "resync"
                if reason is None:
                    continue
                self._check_watcher()
                await self.reconcile(reason, pending.paths)
                # Every pass reads the whole tree: the hints gathered so far are spent.
                pending = Debounce()
                last_pass = clock.monotonic()
        finally:
            self.watcher.stop()

    def _check_watcher(self) -> None:
        """Before each pass: a folder replaced without an event we saw is watched again."""
        try:
            self.watcher.check()
        except Exception:  # crash-only: the pass itself reads the whole tree anyway
            log.exception("cannot re-check the watched folders")

    async def _renew(self) -> None:
        """Heartbeat the lease; a store error is logged (the fence still guards applies)."""
        assert self.lease is not None
        try:
            await asyncio.to_thread(self.lease.renew)
        except LeaseLost:
            raise
        except Exception as exc:  # crash-only: retried at the next beat
            log_lease_error("renew", exc)

    async def _next(self, timeout: float) -> str | None:
        """The next hint, or None once ``timeout`` seconds have passed on the clock seam."""
        queue = self.watcher.queue
        if not queue.empty():
            return queue.get_nowait()
        getter = asyncio.ensure_future(queue.get())
        sleeper = asyncio.ensure_future(self.system.clock.sleep(timeout))
        try:
            await asyncio.wait({getter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        return None


def _summary(exc: BaseException) -> str:
    """One line: our errors as they read, others with their type (SQL and the like in the
    traceback field only)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return first if isinstance(exc, DevskyyError) else f"{type(exc).__name__}: {first}"


def describe_outcome(outcome: PassOutcome) -> dict[str, Any]:
    """A JSON-friendly view of one pass."""
    return {
        "reason": outcome.reason,
        "revision": outcome.revision,
        "counts": outcome.counts,
        "rejected": outcome.rejected,
        "agents": outcome.agents,
        "reloaded": outcome.reloaded,
        "error": outcome.error,
    }
