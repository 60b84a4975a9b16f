"""The fixer agent (manifest ``fixer``, capability ``fix``).

Parameters as the guide: ``fix_type`` (auto | security | performance | format),
``scan_results`` (the scanner's output), ``target_files``, ``dry_run``, plus
``create_backup`` (default true) and ``target_path`` (default: the scan's). It changes
only the files and issues those name, never a path outside ``target_path`` (and
``target_path`` must be inside the config's ``allowedRoots``); how is documented in
``devskyy.agents.codecheck.fixrun`` and ``fixing``. A hard-coded secret is never
"fixed": it stays in ``remaining_issues`` with its manual ``action``.

With ``undo`` (a fix step's output) it fixes nothing and restores that fix's backup
instead: ``scan_and_fix``'s compensation when the project's own check broke.

Output: ``files_fixed``, ``fixes_applied`` (file, rule, tool, line, before, after,
``behaviour_change``), ``fix_counts``, ``policy`` (whose rules judged),
``remaining_issues`` (+ ``remaining_counts``), ``skipped``, ``backup_path`` (restore
with ``devskyy restore``), and ``diffs`` (file -> unified diff) for a dry run.
"""

from __future__ import annotations

import asyncio
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from devskyy.agents.codecheck import backup
from devskyy.agents.codecheck.analysis_config import AnalysisConfig, FixParams
from devskyy.agents.codecheck.config import parse
from devskyy.agents.codecheck.files import PathEscape
from devskyy.agents.codecheck.fixrun import FixRefused, run_fix
from devskyy.agents.codecheck.policy import PolicyError
from devskyy.agents.codecheck.proc import ToolError, classify
from devskyy.agents.codecheck.ruff import ruff_version
from devskyy.core.tasks import Consumes
from devskyy.errors import PermanentError
from devskyy.runtime.agent import AgentStatus, BaseAgent


class FixerAgent(BaseAgent):
    """Applies ruff's safe fixes, ruff format and devskyy's codemods to named issues."""

    config_model = AnalysisConfig
    input_model = FixParams
    # execute_task hands the fixer the report of the scan it depends on.
    consumes = (Consumes("scan_results", "scan"),)

    def __init__(self) -> None:
        super().__init__(agent_name="Fixer Agent", version="2.0.0")
        self.config: AnalysisConfig = AnalysisConfig()

    async def initialize(self) -> bool:
        """Ready when the ruff binary answers and libcst imports."""
        try:
            ruff_version()
            if find_spec("libcst") is None:
                raise ImportError("libcst is not installed")
        except (OSError, ImportError, RuntimeError) as exc:
            self.status = AgentStatus.FAILED
            self.last_error = f"fixers unavailable: {exc}"
            return False
        self.status = AgentStatus.HEALTHY
        return True

    def headline(self, result: dict[str, Any]) -> str | None:
        if result.get("undone"):
            files = result.get("reverted_files", [])
            return f"reverted the fixes of {len(files)} files: {', '.join(files)}"
        fixes = result.get("fix_counts", {}).get("applied", len(result.get("fixes_applied", [])))
        remaining = result.get("remaining_counts", {}).get("total", 0)
        verb = "would apply" if result.get("dry_run") else "applied"
        # A dry run writes nothing (files_fixed 0) but says which files would change.
        changed = result.get("changed_files")
        files = len(changed) if isinstance(changed, list) else result.get("files_fixed")
        line = f"{verb} {fixes} fixes in {files} files, {remaining} left"
        backup = result.get("backup_path")
        return f"{line}; backup {backup}" if backup else line

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        params = parse(FixParams, kwargs, "fix")
        if params.undo is not None:
            return await asyncio.to_thread(self._undo, params.undo, params.undo_reason)
        scan_root = (params.scan_results or {}).get("target_path")
        root = self.config.root(params.target_path or scan_root, self.name)
        now = self.clock.now()
        backup_dir = None
        if params.create_backup and not params.dry_run:
            backup_dir = backup.new_backup_dir(self.context.state_dir.absolute(), now)
        try:
            return await run_fix(
                target_path=str(root),
                scan_results=params.scan_results,
                target_files=params.target_files,
                fix_type=params.fix_type,
                dry_run=params.dry_run,
                backup_dir=backup_dir,
                now=now,
                settings=self.config.scan_settings(),
            )
        except (FixRefused, PathEscape, backup.BackupError, PolicyError) as exc:
            raise PermanentError(str(exc)) from None
        except ToolError as exc:
            raise classify(exc) from None

    def _undo(self, fix: dict[str, Any], reason: str | None) -> dict[str, Any]:
        """Restore the backup a fix step made (the workflow's compensation)."""
        path = fix.get("backup_path")
        if not isinstance(path, str) or not path:
            raise PermanentError(
                "undo: the fix step made no backup (a dry run, create_backup: false, or "
                "nothing written); nothing can be restored"
            )
        backups = backup.backups_dir(self.context.state_dir.absolute()).resolve()
        folder = Path(path).resolve()
        if folder.parent != backups:
            raise PermanentError(f"undo: {path} is not a backup of this fixer ({backups})")
        try:
            restored = backup.restore(folder)
        except backup.BackupError as exc:
            raise PermanentError(f"undo: {exc}") from None
        return {
            "undone": True,
            "reason": reason,
            "restored_from": restored.backup_path,
            "target_path": restored.root,
            "reverted_files": restored.files,
        }
