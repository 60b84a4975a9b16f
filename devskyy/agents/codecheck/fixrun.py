"""One fix run: choose the named issues, plan every file, then show or write the result.

Lines of code quoted in the result (before/after lines, dry-run diffs) have any value
detect-secrets flags masked inside its literal, so a run record never carries a secret;
how fixes are planned, rescanned and counted is ``settle``'s, what the record
shows (bounded, masked) ``records``'.

The fixer changes only files named by ``scan_results`` (or ``target_files``), and inside
them only the issues named and in scope of the fix type. With neither, it refuses: it
never fixes a whole tree by default. Every path must resolve inside ``target_path``.
A dry run returns a unified diff per file and writes nothing; otherwise the originals go
to one backup folder first (recorded and synced before the first write), then each file
is replaced through ``devskyy.adapters.safe_files`` (atomically, mode kept, never through
a symbolic link). A file refused at write time is listed in ``refused_writes`` (and
``skipped``); the run fails only when every file was refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devskyy.adapters import failpoints, safe_files
from devskyy.agents.codecheck import backup
from devskyy.agents.codecheck.files import PathEscape, relative, resolve_inside
from devskyy.agents.codecheck.fixing import FIX_TYPES, FilePlan, in_scope
from devskyy.agents.codecheck.issues import Issue, summarize
from devskyy.agents.codecheck.policy import policy_record
from devskyy.agents.codecheck.records import records
from devskyy.agents.codecheck.scanning import (
    PolicyChanged,
    ScanSettings,
    ScanType,
    resolve_policy,
    scan_files,
    settings_from_record,
    settings_record,
)
from devskyy.agents.codecheck.settle import is_complete, plan_and_settle, scan_type_of

SCAN_FOR_FIX = {
    "auto": ScanType.FULL,
    "security": ScanType.SECURITY,
    "performance": ScanType.PERFORMANCE,
    "format": ScanType.QUICK,
}
Refusal = dict[str, str]


class FixRefused(ValueError):
    """The fix request itself is unacceptable (nothing named, bad root, bad fix type)."""


async def _issues_from_files(
    root: Path, target_files: Sequence[str], fix_type: str, settings: ScanSettings
) -> tuple[list[Issue], dict[str, Any]]:
    paths = []
    for name in target_files:
        try:
            paths.append(resolve_inside(root, name))
        except PathEscape as exc:
            raise FixRefused(f"refused: {exc}") from None
    scan_type = SCAN_FOR_FIX[fix_type]
    issues = await scan_files(root, sorted(set(paths)), scan_type, settings)
    return issues, settings_record(scan_type, settings, root)


def _rebase(
    issues: Sequence[Issue], scan_root: Path, root: Path
) -> tuple[list[Issue], list[dict[str, str]]]:
    """Issues with paths relative to ``root``; those outside it are refused."""
    kept: list[Issue] = []
    refused: list[dict[str, str]] = []
    # One resolution per file, not per issue: a big file has tens of thousands of issues.
    where: dict[str, str | PathEscape] = {}
    for issue in issues:
        if issue.file not in where:
            try:
                where[issue.file] = relative(root, resolve_inside(root, scan_root / issue.file))
            except PathEscape as exc:
                where[issue.file] = exc
        rel = where[issue.file]
        if isinstance(rel, PathEscape):
            refused.append({"file": issue.file, "reason": f"refused: {rel}"})
            continue
        kept.append(issue if rel == issue.file else _with_file(issue, rel))
    return kept, refused


def _with_file(issue: Issue, file: str) -> Issue:
    data = issue.to_dict()
    data["file"] = file
    return Issue.from_dict(data)


def _writable(root: Path, plans: Sequence[FilePlan]) -> tuple[list[FilePlan], list[Refusal]]:
    """The plans whose files may be written now, and the refusals of the others."""
    ok: list[FilePlan] = []
    refused: list[Refusal] = []
    for plan in plans:
        try:
            safe_files.check_writable(root, plan.file)
        except (safe_files.UnsafeWrite, OSError) as exc:
            refused.append({"file": plan.file, "reason": _reason(exc)})
        else:
            ok.append(plan)
    return ok, refused


def _write_all(root: Path, plans: Sequence[FilePlan]) -> tuple[list[FilePlan], list[Refusal]]:
    """Write each plan through ``safe_files`` (mode kept); a refused file does not stop
    the others. Returns the plans written and the refusals."""
    written: list[FilePlan] = []
    refused: list[Refusal] = []
    for plan in plans:
        assert plan.new_text is not None
        try:
            safe_files.write_bytes(root, plan.file, plan.new_text.encode("utf-8"))
        except (safe_files.UnsafeWrite, OSError) as exc:
            refused.append({"file": plan.file, "reason": _reason(exc)})
        else:
            written.append(plan)
            failpoints.hit("fix.file_written")
    return written, refused


def _reason(exc: Exception) -> str:
    """Why a file was not written, without absolute paths (``UnsafeWrite`` names the
    path relative to the root; an ``OSError`` shows only its text)."""
    if isinstance(exc, safe_files.UnsafeWrite):
        return f"refused: {exc.reason}"
    return f"not written: {exc.strerror if isinstance(exc, OSError) else exc}"


@dataclass(frozen=True)
class _Named:
    """What a fix request names: issues (paths relative to the root) and their context."""

    issues: list[Issue]
    refused: list[dict[str, str]]
    hashes: dict[str, str]
    record: dict[str, Any]
    settings: ScanSettings


def _from_scan(
    root: Path,
    scan_results: dict[str, Any],
    target_files: Sequence[str] | None,
    settings: ScanSettings,
) -> _Named:
    """The issues a scanner's output names inside ``root`` (and ``target_files``)."""
    scan_root = Path(scan_results.get("target_path") or root).resolve()
    record = scan_results.get("settings", {})
    try:
        settings = settings_from_record(record, settings, root)
        raw = [Issue.from_dict(i) for i in scan_results.get("issues", [])]
    except PolicyChanged as exc:
        raise FixRefused(str(exc)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FixRefused(f"scan_results is not a scanner's output: {exc!r}") from None
    issues, refused = _rebase(raw, scan_root, root)
    hashes = {
        relative(root, (scan_root / f).resolve()): h
        for f, h in scan_results.get("file_hashes", {}).items()
        if (scan_root / f).resolve().is_relative_to(root)
    }
    if target_files:
        wanted = {relative(root, resolve_inside(root, f)) for f in target_files}
        issues = [i for i in issues if i.file in wanted]
    return _Named(issues, refused, hashes, record, settings)


async def run_fix(
    *,
    target_path: str | None,
    scan_results: dict[str, Any] | None,
    target_files: Sequence[str] | None,
    fix_type: str,
    dry_run: bool,
    backup_dir: Path | None,
    now: float,
    settings: ScanSettings,
) -> dict[str, Any]:
    """The fixer's whole run; ``backup_dir`` None means no backup."""
    if fix_type not in FIX_TYPES:
        raise FixRefused(f"fix_type must be one of {', '.join(FIX_TYPES)}, not {fix_type!r}")
    base = target_path or (scan_results or {}).get("target_path")
    if not base:
        raise FixRefused("target_path is required (or scan_results from a scan)")
    root = Path(base).resolve()
    if not root.is_dir():
        raise FixRefused(f"target_path {root} is not a folder")
    if backup_dir is not None and not dry_run:
        # A re-run of a step killed mid-fix (same folder, see backup.new_backup_dir): put
        # back what it had written, so the files match the scan again and this attempt
        # redoes the whole fix, keeping the originals the first attempt backed up.
        backup.undo_partial(backup_dir)
    if scan_results:
        named = _from_scan(root, scan_results, target_files, settings)
    elif target_files:
        settings = resolve_policy(root, settings)
        issues, record = await _issues_from_files(root, target_files, fix_type, settings)
        named = _Named(issues, [], {}, record, settings)
    else:
        raise FixRefused("nothing to fix: pass scan_results or target_files")
    issues, hashes, settings = named.issues, named.hashes, named.settings

    chosen: dict[str, list[Issue]] = {}
    for issue in issues:
        if in_scope(issue, fix_type):
            chosen.setdefault(issue.file, []).append(issue)
    settled = await plan_and_settle(
        root,
        issues,
        chosen,
        hashes=hashes,
        format_checked="ruff-format" in named.record.get("checks", []),
        settings=settings,
        fix_type=fix_type,
        scan_type=scan_type_of(named.record.get("checks", [])),
        complete=is_complete(scan_results),
    )
    plans = settled.plans
    changed = [p for p in plans if p.changed and p.error is None]
    backup_path: str | None = None
    refused: list[Refusal] = []
    if not dry_run and changed:
        changed, refused = _writable(root, changed)
        if changed and backup_dir is not None:
            originals = {p.file: p.original for p in changed}
            written = {p.file: (p.new_text or "").encode("utf-8") for p in changed}
            backup_path = str(backup.create(backup_dir, root, originals, now, written))
            failpoints.hit("fix.backup_recorded")
        changed, late = _write_all(root, changed)
        if late and backup_path is not None:
            # The backup must hold only files the run changed: restoring a refused one
            # would have to write through the very link that was refused.
            backup.forget(Path(backup_path), [r["file"] for r in late])
        refused += late
        if refused and not changed:
            raise FixRefused(
                "nothing was written; every file was refused: "
                + "; ".join(f"{r['file']} ({r['reason']})" for r in refused)
            )
        reasons = {r["file"]: r["reason"] for r in refused}
        for plan in plans:
            plan.error = reasons.get(plan.file, plan.error)
    remaining = settled.remaining(issues, [p.file for p in changed])
    shown = await asyncio.to_thread(records, [p for p in plans if p.error is None], dry_run)
    result: dict[str, Any] = {
        "fix_type": fix_type,
        "dry_run": dry_run,
        "target_path": str(root),
        "files_fixed": 0 if dry_run else len(changed),
        "changed_files": [p.file for p in changed],
        **shown,
        "policy": policy_record(
            settings.ruff.config, settings.bandit_config, "scanner" if scan_results else "fixer"
        ),
        "remaining_issues": [i.to_dict() for i in remaining],
        "remaining_counts": summarize(remaining),
        "skipped": named.refused + [{"file": p.file, "reason": p.error} for p in plans if p.error],
        "refused_writes": refused,
        "backup_path": backup_path,
    }
    return result
