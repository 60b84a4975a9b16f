"""The manifests shipped in ``manifests/`` validate and say what the guide says."""

from __future__ import annotations

from pathlib import Path

import pytest

from devskyy.core.yaml_strict import load_documents
from devskyy.model.manifests import KINDS, Agent, Priority, Trigger, Workflow
from devskyy.model.resources import ResourceSet
from devskyy.runtime.manifests import load_desired, validate_tree

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
SHIPPED = sorted(p for p in MANIFESTS.rglob("*") if p.suffix in (".yaml", ".yml"))

# name: (module, capabilities, dependencies, priority), from the guide's dependency graph
# ("Multi-Agent Dependencies") and execution order (security critical; scanner,
# e-commerce, financial high; content, SEO, AI medium).
GUIDE_AGENTS = {
    "scanner": ("devskyy.agents.scanner:ScannerAgent", ["scan"], [], "high"),
    "fixer": ("devskyy.agents.fixer:FixerAgent", ["fix"], ["scanner"], "high"),
    "security": ("devskyy.agents.security:SecurityAgent", ["security_scan"], [], "critical"),
    "claude_sonnet": (
        "devskyy.agents.content:ContentGeneratorAgent",
        ["generate_content"],
        [],
        "medium",
    ),
    "seo": (
        "devskyy.agents.seo:SeoAgent",
        ["seo_optimize"],
        ["claude_sonnet", "ecommerce"],
        "medium",
    ),
    "social_media": (
        "devskyy.agents.social:SocialMediaAgent",
        ["social_posts"],
        ["claude_sonnet"],
        "medium",
    ),
    "email": ("devskyy.agents.email:EmailAgent", ["email_campaign"], ["claude_sonnet"], "medium"),
    "publisher": ("devskyy.agents.publisher:PublisherAgent", ["publish"], ["seo"], "medium"),
    "ecommerce": (
        "devskyy.agents.commerce.ecommerce:EcommerceAgent",
        ["validate_order"],
        [],
        "high",
    ),
    "inventory": (
        "devskyy.agents.commerce.inventory:InventoryAgent",
        ["reserve_inventory", "release_inventory"],
        ["ecommerce"],
        "high",
    ),
    "financial": (
        "devskyy.agents.commerce.financial:FinancialAgent",
        ["process_payment", "record_transaction"],
        ["ecommerce"],
        "high",
    ),
}


@pytest.fixture(scope="module")
def shipped() -> ResourceSet:
    return load_desired(MANIFESTS, [])


def test_the_whole_shipped_tree_validates() -> None:
    result = validate_tree(MANIFESTS, [])
    assert [str(p) for p in result.problems] == []


@pytest.mark.parametrize(
    "path", SHIPPED, ids=[p.relative_to(MANIFESTS).as_posix() for p in SHIPPED]
)
def test_each_file_loads_strictly_fits_its_schema_and_names_it(path: Path) -> None:
    # References between files are checked by the whole-tree test above.
    result = load_documents(path.read_bytes(), path.name)
    assert [str(p) for p in result.problems] == []
    documents = [d.data for d in result.documents if d.data is not None]
    kinds = {d["kind"] for d in documents}
    for data in documents:
        KINDS[data["kind"]].model_validate(data)
    assert len(kinds) == 1, "one kind per file, so that one schema line fits"
    schema = f"../../schemas/{kinds.pop().lower()}.json"
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == f"# yaml-language-server: $schema={schema}"
    assert (path.parent / schema).resolve().is_file()


def test_each_agent_lives_in_a_file_of_its_name() -> None:
    for path in sorted((MANIFESTS / "agents").glob("*.yaml")):
        result = load_documents(path.read_bytes(), path.name)
        assert [d.data["metadata"]["name"] for d in result.documents] == [path.stem]


def test_agents_match_the_guide(shipped: ResourceSet) -> None:
    agents = {a.name: a for a in shipped.agents}
    assert set(GUIDE_AGENTS) <= set(agents)
    for name, (module, capabilities, dependencies, priority) in GUIDE_AGENTS.items():
        spec = agents[name].spec
        assert spec.module == module, name
        assert spec.capabilities == capabilities, name
        assert sorted(spec.dependencies) == sorted(dependencies), name
        assert spec.priority is Priority(priority), name
        assert spec.module.startswith("devskyy.agents."), name


def _steps(workflow: Workflow) -> dict[str, tuple[str | None, list[str], Trigger]]:
    return {s.name: (s.agent or s.capability, s.needs, s.trigger) for s in workflow.spec.steps}


def _workflow(shipped: ResourceSet, name: str) -> Workflow:
    found = shipped.get("Workflow", name)
    assert isinstance(found, Workflow), name
    return found


def test_scan_and_fix_steps(shipped: ResourceSet) -> None:
    workflow = _workflow(shipped, "scan_and_fix")
    assert _steps(workflow) == {
        "security": ("security", [], Trigger.ALL_SUCCEEDED),
        "scan": ("scanner", ["security"], Trigger.ALL_SUCCEEDED),
        "verify_before": ("verifier", ["scan"], Trigger.ALL_SUCCEEDED),
        "fix": ("fixer", ["scan", "verify_before"], Trigger.ALL_SUCCEEDED),
        "verify_after": ("verifier", ["verify_before", "fix"], Trigger.ALL_SUCCEEDED),
        # Compensation: the project's own check broke, the fix's backup goes back.
        "restore": ("fixer", ["verify_after"], Trigger.ANY_FAILED),
        # The rescan confirms the fixes, once the project's own check accepted them.
        "rescan": ("scanner", ["scan", "verify_after"], Trigger.ALL_SUCCEEDED),
    }
    gate = next(s for s in workflow.spec.steps if s.name == "verify_before")
    assert gate.when is not None  # verify and fix only when the fix type has work
    assert "steps.scan.output.fixable_for_fix_type" in gate.when


def test_content_pipeline_steps(shipped: ResourceSet) -> None:
    assert _steps(_workflow(shipped, "content_pipeline")) == {
        "generate": ("claude_sonnet", [], Trigger.ALL_SUCCEEDED),
        "seo": ("seo", ["generate"], Trigger.ALL_SUCCEEDED),
        "publish": ("publisher", ["seo"], Trigger.ALL_SUCCEEDED),
        "social": ("social_media", ["seo"], Trigger.ALL_SUCCEEDED),
        "email": ("email", ["seo"], Trigger.ALL_SUCCEEDED),
    }


def test_ecommerce_order_steps_with_compensation(shipped: ResourceSet) -> None:
    workflow = _workflow(shipped, "ecommerce_order")
    assert _steps(workflow) == {
        "validate": ("ecommerce", [], Trigger.ALL_SUCCEEDED),
        "reserve": ("inventory", ["validate"], Trigger.ALL_SUCCEEDED),
        "payment": ("financial", ["reserve"], Trigger.ALL_SUCCEEDED),
        "record": ("financial", ["payment"], Trigger.ALL_SUCCEEDED),
        "release": ("inventory", ["payment"], Trigger.ANY_FAILED),
    }


def test_every_workflow_param_has_a_default_or_is_required(shipped: ResourceSet) -> None:
    for workflow in shipped.workflows:
        for name, param in workflow.spec.params.items():
            assert param.default is not None or param.required, f"{workflow.name}.{name}"


def test_security_runs_first_and_depends_on_nothing(shipped: ResourceSet) -> None:
    agents = {a.name: a for a in shipped.agents}
    security = agents["security"]
    assert isinstance(security, Agent)
    assert security.spec.dependencies == []
    assert min(a.spec.priority.rank for a in agents.values()) == security.spec.priority.rank
