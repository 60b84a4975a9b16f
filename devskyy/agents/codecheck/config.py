"""The manifest ``spec.config`` and the call parameters of the code agents.

Config keys may be written camelCase (as manifests are) or snake_case. Parameters are
checked strictly: an unknown parameter or a bad value is a ``PermanentError`` naming it.
Path parameters carry the path types of ``devskyy.model.paths``, which the API reads to
confine them to its workspace (and to give an omitted folder the workspace root).

Here: what every code agent shares, and the security agent's and the verifier's models;
the scanner's and the fixer's (the analyzers' policy: ruff, bandit, complexity) are in
``analysis_config``, so that starting the security agent (the first step of
``scan_and_fix``) imports none of the analyzers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from devskyy.agents.codecheck.params import check_root
from devskyy.errors import PermanentError
from devskyy.model.paths import ServerCommand, WorkspaceFolder

M = TypeVar("M", bound=BaseModel)
SecurityCheck = Literal["secrets", "dependencies", "config"]
SECURITY_CHECKS: tuple[SecurityCheck, ...] = ("secrets", "dependencies", "config")


class CamelModel(BaseModel):
    """Base of the code agents' models: camelCase or snake_case keys, unknown ones refused."""

    # defer_build: each model's validator is built when first used, not at import: an
    # agent process builds only its own agent's config and parameters (~1 ms each).
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, defer_build=True
    )


class CodeAgentConfig(CamelModel):
    """What every code agent shares: where it may work."""

    allowed_roots: list[str] = Field(default_factory=lambda: ["."], min_length=1)

    def root(self, target_path: str | None, agent: str | None = None) -> Path:
        """``target_path`` resolved and checked against ``allowed_roots``; ``agent``
        (the manifest name) is named in the refusal, with the fields to change."""
        try:
            return check_root(target_path, self.allowed_roots, Path.cwd(), agent)
        except ValueError as exc:
            raise PermanentError(str(exc)) from None


class VerifierConfig(CodeAgentConfig):
    """``spec.config`` of the verifier: where it may run, and for how long at most."""

    max_timeout_seconds: float = Field(default=3600, gt=0, le=86_400)


class VerifyParams(CamelModel):
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


class SecurityParams(CamelModel):
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
