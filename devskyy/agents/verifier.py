"""The verifier agent (manifest ``verifier``, capability ``verify``): the project's own check.

It runs ``command`` (for example ``python -m pytest -q``) in ``target_path`` — that is,
it runs the project's code — as ``devskyy.agents.codecheck.verify`` describes. In
``scan_and_fix`` it runs twice: ``verify_before`` records whether the project passes
before the fix; ``verify_after`` (given that ``baseline`` and the ``fix`` output) runs it
again and *fails* when it passed before and fails now. That failure is what the
workflow's compensation step (``trigger: any_failed``) answers by restoring the fix's
backup; the verifier itself never changes a file.

Without a ``command`` it does nothing and says so (``ran: false``), so the workflow's
steps are the same whether or not verification was asked for.
"""

from __future__ import annotations

from typing import Any

from devskyy.agents.codecheck import verify
from devskyy.agents.codecheck.config import VerifierConfig, VerifyParams, parse
from devskyy.errors import PermanentError
from devskyy.runtime.agent import BaseAgent


def _not_run(reason: str) -> dict[str, Any]:
    return {"ran": False, "passed": None, "reason": reason}


class VerifierAgent(BaseAgent):
    """Runs the project's own check before and after a fix, and judges the pair."""

    config_model = VerifierConfig
    input_model = VerifyParams

    def __init__(self) -> None:
        super().__init__(agent_name="Verifier Agent", version="1.0.0")
        self.config: VerifierConfig = VerifierConfig()

    def headline(self, result: dict[str, Any]) -> str | None:
        if not result.get("ran"):
            return f"not run: {result.get('reason')}"
        verdict = "passed" if result.get("passed") else "failed"
        line = f"{result.get('command')}: {verdict} (exit {result.get('returncode')})"
        note = result.get("note")
        return f"{line}; {note}" if note else line

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        params = parse(VerifyParams, kwargs, "verify")
        if not params.command.strip():
            return _not_run("no verify_command")
        root = self.config.root(params.target_path, self.name)
        if params.timeout_seconds > self.config.max_timeout_seconds:
            raise PermanentError(
                f"timeout_seconds {params.timeout_seconds:g} is more than this verifier's "
                f"spec.config.maxTimeoutSeconds ({self.config.max_timeout_seconds:g})"
            )
        after = params.baseline is not None
        if after:
            fix = params.fix or {}
            if fix.get("dry_run") or not fix.get("changed_files"):
                return _not_run("the fix wrote nothing")
        elif not params.dry_run and not params.create_backup:
            raise PermanentError(
                "verify_command needs create_backup: true (a fix that breaks the project "
                "is undone from its backup)"
            )
        try:
            outcome = await verify.run(
                root, params.command, shell=params.shell, timeout=params.timeout_seconds
            )
        except verify.VerifyError as exc:
            raise PermanentError(str(exc)) from None
        result = outcome.to_dict()
        result["stage"] = "after the fix" if after else "before the fix"
        broke = verify.judge(params.baseline, outcome) if after else None
        if broke is not None:
            raise PermanentError(f"{broke}; last output: {outcome.output_tail[-500:]}")
        if after and not outcome.passed:
            result["note"] = "it failed before the fix too: the fix is not judged by it"
        elif not outcome.passed:
            result["note"] = "it fails before the fix: the fix will not be judged by it"
        return result
