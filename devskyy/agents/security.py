"""The security agent (manifest ``security``, capability ``security_scan``, runs first).

Finds secrets committed in files (Yelp's detect-secrets), risky dependency specs and
risky configuration, in the scanner's issue format; see
``devskyy.agents.codecheck.security`` for exactly what is checked (and what is not:
there is no vulnerability database here). Parameters: ``target_path`` and ``checks``
(any of secrets, dependencies, config). No finding is fixable: a secret needs a person
to move it out of the code and rotate it, so each carries an ``action``.
"""

from __future__ import annotations

import asyncio
from importlib.util import find_spec
from typing import Any

from devskyy.agents.codecheck import security
from devskyy.agents.codecheck.config import CodeAgentConfig, SecurityParams, parse
from devskyy.agents.codecheck.issues import severity_line
from devskyy.runtime.agent import AgentStatus, BaseAgent


class SecurityAgent(BaseAgent):
    """Secrets, dependency pins and risky settings."""

    config_model = CodeAgentConfig
    input_model = SecurityParams

    def __init__(self) -> None:
        super().__init__(agent_name="Security Agent", version="2.0.0")
        self.config: CodeAgentConfig = CodeAgentConfig()

    async def initialize(self) -> bool:
        """Ready when detect-secrets imports."""
        try:
            if find_spec("detect_secrets") is None:
                raise ImportError("detect_secrets is not installed")
        except ImportError as exc:
            self.status = AgentStatus.FAILED
            self.last_error = f"detect-secrets unavailable: {exc}"
            return False
        self.status = AgentStatus.HEALTHY
        return True

    def headline(self, result: dict[str, Any]) -> str | None:
        counts = result.get("counts", {})
        return f"{result.get('files_scanned')} files, {severity_line(counts, 'findings')}"

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        params = parse(SecurityParams, kwargs, "security_scan")
        root = self.config.root(params.target_path, self.name)
        started = self.clock.monotonic()
        report = await asyncio.to_thread(security.scan_tree, root, params.checks)
        report["duration_seconds"] = round(self.clock.monotonic() - started, 3)
        return report
