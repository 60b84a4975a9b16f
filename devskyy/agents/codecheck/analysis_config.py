"""The scanner's and the fixer's ``spec.config`` and call parameters.

``AnalysisConfig`` is the analyzers' policy kept in the manifest (ruff rules and target
version, line length, complexity, bandit tests skipped), so that every scan judges alike;
see ``config`` for what every code agent shares (camelCase keys, strict parameters,
workspace path types).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from devskyy.agents.codecheck import bandit, ruff
from devskyy.agents.codecheck.config import CamelModel, CodeAgentConfig
from devskyy.agents.codecheck.perf import DEFAULT_MAX_COMPLEXITY, PerfSettings
from devskyy.agents.codecheck.scanning import ScanSettings
from devskyy.model.paths import WorkspaceFiles, WorkspaceFolder

RuffRule = Annotated[str, StringConstraints(pattern=ruff.RULE_PATTERN)]
BanditTest = Annotated[str, StringConstraints(pattern=r"^B\d{3}$")]
FixType = Literal["auto", "security", "performance", "format"]


class AnalysisConfig(CodeAgentConfig):
    """The analyzers' policy (kept in the manifest, so every scan judges alike)."""

    ruff_select: list[RuffRule] = Field(
        default_factory=lambda: list(ruff.DEFAULT_SELECT), min_length=1
    )
    ruff_target_version: str = Field(default="py39", pattern=r"^py3\d{1,2}$")
    line_length: int = Field(default=88, ge=20, le=320)
    max_complexity: int = Field(default=DEFAULT_MAX_COMPLEXITY, ge=1, le=200)
    bandit_skip: list[BanditTest] = Field(default_factory=lambda: list(bandit.DEFAULT_SKIP))

    def scan_settings(self) -> ScanSettings:
        return ScanSettings(
            ruff=ruff.RuffSettings(
                select=tuple(self.ruff_select),
                target_version=self.ruff_target_version,
                line_length=self.line_length,
            ),
            perf=PerfSettings(self.max_complexity),
            bandit_skip=tuple(self.bandit_skip),
        )


class ScannerConfig(AnalysisConfig):
    """``spec.config`` of the scanner."""

    live_check_url: str | None = None
    live_check_timeout_seconds: float = Field(default=5.0, gt=0, le=120)


class ScanParams(CamelModel):
    """The scanner's parameters (the guide's ``POST /api/agents/scanner/scan`` body)."""

    scan_type: Literal["full", "security", "performance", "quick"] = "full"
    target_path: WorkspaceFolder = "."
    include_live_check: bool = False
    compare_with: dict[str, Any] | None = None
    # The fix type a fix step will use: ``fixable_for_fix_type`` counts its work.
    fix_type: FixType = "auto"


class FixParams(CamelModel):
    """The fixer's parameters (the guide's ``POST /api/agents/fixer/fix`` body)."""

    fix_type: FixType = "auto"
    scan_results: dict[str, Any] | None = None
    target_files: WorkspaceFiles = Field(default_factory=list)
    target_path: WorkspaceFolder | None = None
    dry_run: bool = False
    create_backup: bool = True
    # Compensation: the output of a fix step whose changes to revert from its backup
    # (then nothing is fixed); ``undo_reason`` says why, for the record.
    undo: dict[str, Any] | None = None
    undo_reason: str | None = Field(default=None, max_length=500)
