"""The manifest ``spec.config`` and the call parameters of the three code agents.

Config keys may be written camelCase (as manifests are) or snake_case. Parameters are
checked strictly: an unknown parameter or a bad value is a ``PermanentError`` naming it.
Path parameters carry the path types of ``devskyy.model.paths``, which the API reads to
confine them to its workspace (and to give an omitted folder the workspace root).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

from devskyy.agents.codecheck import bandit, ruff
from devskyy.agents.codecheck.params import check_root
from devskyy.agents.codecheck.perf import DEFAULT_MAX_COMPLEXITY, PerfSettings
from devskyy.errors import PermanentError
from devskyy.model.paths import ServerCommand, WorkspaceFiles, WorkspaceFolder

if TYPE_CHECKING:
    from devskyy.agents.codecheck.scanning import ScanSettings

M = TypeVar("M", bound=BaseModel)
RuffRule = Annotated[str, StringConstraints(pattern=ruff.RULE_PATTERN)]
BanditTest = Annotated[str, StringConstraints(pattern=r"^B\d{3}$")]
SecurityCheck = Literal["secrets", "dependencies", "config"]
SECURITY_CHECKS: tuple[SecurityCheck, ...] = ("secrets", "dependencies", "config")


class _Camel(BaseModel):
    # defer_build: each model's validator is built when first used, not at import: an
    # agent process builds only its own agent's config and parameters (~1 ms each).
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, defer_build=True
    )


class CodeAgentConfig(_Camel):
    """What every code agent shares: where it may work."""

    allowed_roots: list[str] = Field(default_factory=lambda: ["."], min_length=1)

    def root(self, target_path: str | None, agent: str | None = None) -> Path:
        """``target_path`` resolved and checked against ``allowed_roots``; ``agent``
        (the manifest name) is named in the refusal, with the fields to change."""
        try:
            return check_root(target_path, self.allowed_roots, Path.cwd(), agent)
        except ValueError as exc:
            raise PermanentError(str(exc)) from None


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
        # Imported here: the scanning machinery is the scanner's and the fixer's, not on
        # the way to the security and verifier agents, which share this module.
        from devskyy.agents.codecheck.scanning import ScanSettings  # noqa: PLC0415

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


class ScanParams(_Camel):
    """The scanner's parameters (the guide's ``POST /api/agents/scanner/scan`` body)."""

    scan_type: Literal["full", "security", "performance", "quick"] = "full"
    target_path: WorkspaceFolder = "."
    include_live_check: bool = False
    compare_with: dict[str, Any] | None = None
    # The fix type a fix step will use: ``fixable_for_fix_type`` counts its work.
    fix_type: Literal["auto", "security", "performance", "format"] = "auto"


class FixParams(_Camel):
    """The fixer's parameters (the guide's ``POST /api/agents/fixer/fix`` body)."""

    fix_type: Literal["auto", "security", "performance", "format"] = "auto"
    scan_results: dict[str, Any] | None = None
    target_files: WorkspaceFiles = Field(default_factory=list)
    target_path: WorkspaceFolder | None = None
    dry_run: bool = False
    create_backup: bool = True
    # Compensation: the output of a fix step whose changes to revert from its backup
    # (then nothing is fixed); ``undo_reason`` says why, for the record.
    undo: dict[str, Any] | None = None
    undo_reason: str | None = Field(default=None, max_length=500)


class VerifierConfig(CodeAgentConfig):
    """``spec.config`` of the verifier: where it may run, and for how long at most."""

    max_timeout_seconds: float = Field(default=3600, gt=0, le=86_400)


class VerifyParams(_Camel):
    """The verifier's parameters (``scan_and_fix``'s ``verify_before``/``verify_after``)."""

    target_path: WorkspaceFolder = "."
    command: ServerCommand = Field(default="", max_length=4096)
    shell: bool = False
    timeout_seconds: float = Field(default=900, gt=0)
    # After the fix: the verify_before output and the fix output.
    baseline: dict[str, Any] | None = None
    fix: dict[str, Any] | None = None
    # Before the fix: what the fix will do (a fix without a backup cannot be undone).
    dry_run: bool = False
    create_backup: bool = True


class SecurityParams(_Camel):
    """The security agent's parameters."""

    target_path: WorkspaceFolder = "."
    checks: list[SecurityCheck] = Field(default_factory=lambda: list(SECURITY_CHECKS), min_length=1)


def parse(model: type[M], kwargs: dict[str, Any], what: str) -> M:
    """Validate call parameters; a ``PermanentError`` lists every problem."""
    try:
        return model.model_validate(kwargs)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in exc.errors()
        )
        raise PermanentError(f"invalid {what} parameters: {problems}") from None
