"""A table of invalid manifest trees and the exact lines ``validate`` prints for each.

Each row is a tree (relative path -> text) held by the in-memory twin of the manifest
files adapter, and the exact problems, in printing order. Together the rows cover
every rule: loading, schema, the set checks, and the ordering of problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from devskyy.adapters.manifest_files import DEFAULT_MAX_BYTES, MemoryManifestFiles
from devskyy.errors import ManifestError
from devskyy.model.manifests import Agent
from devskyy.runtime.manifests import allowed_prefixes_from_env, load_desired, validate_tree


def agent(name: str, *extra: str, caps: str = "[work]", module: str = "") -> str:
    """An Agent document; ``extra`` lines are appended under ``spec`` (indent them)."""
    module = module or f"devskyy.agents.{name}:Agent"
    return (
        "apiVersion: devskyy.dev/v1\n"
        "kind: Agent\n"
        "metadata:\n"
        f"  name: {name}\n"
        "spec:\n"
        f"  module: {module}\n"
        f"  capabilities: {caps}\n" + "".join(f"{line}\n" for line in extra)
    )


def workflow(name: str, body: str) -> str:
    """A Workflow document; ``body`` is the text under ``spec`` (already indented)."""
    return f"apiVersion: devskyy.dev/v1\nkind: Workflow\nmetadata:\n  name: {name}\nspec:\n{body}"


BINDING = """\
apiVersion: devskyy.dev/v1
kind: RoleBinding
metadata:
  name: {name}
spec:
  role: {role}
  subjects:
    - kind: User
      name: alice
"""

ROLE = """\
apiVersion: devskyy.dev/v1
kind: Role
metadata:
  name: {name}
spec:
  rules:
    - resources: [agents]
      permissions: [read]
"""


@dataclass
class Case:
    id: str
    files: dict[str, str | bytes | OSError]
    expected: list[str]
    prefixes: tuple[str, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES
    extra: dict[str, object] = field(default_factory=dict)


CASES = [
    # -- loading ------------------------------------------------------------------------
    Case(
        "duplicate-key",
        {"a.yaml": agent("a", "  priority: high", "  priority: low")},
        [
            "m/a.yaml:9:3: spec.priority: duplicate key 'priority' "
            "(first defined at line 8, column 3)"
        ],
    ),
    Case(
        "anchor-and-alias",
        {"a.yaml": agent("a", "  retry: &r {maxAttempts: 2}", "  circuitBreaker: *r")},
        [
            "m/a.yaml:8:10: spec.retry: anchors and aliases are not allowed (found anchor '&r')",
            "m/a.yaml:9:19: spec.circuitBreaker: anchors and aliases are not allowed "
            "(found alias '*r')",
        ],
    ),
    Case(
        "explicit-tag",
        {"a.yaml": agent("a", "  replicas: !!int '3'")},
        ["m/a.yaml:8:13: spec.replicas: explicit tags are not allowed (found '!!int')"],
    ),
    Case(
        "python-tag",
        {"a.yaml": agent("a", "  config: !!python/object/apply:os.system [ls]")},
        [
            "m/a.yaml:8:11: spec.config: explicit tags are not allowed "
            "(found '!!python/object/apply:os.system')"
        ],
    ),
    Case(
        "deep-nesting",
        {"a.yaml": agent("a", "  config: " + "[" * 40 + "]" * 40)},
        [
            "m/a.yaml:8:41: spec.config" + "[0]" * 30 + ": nesting deeper than 32 levels is not "
            "allowed"
        ],
    ),
    Case(
        "non-utf8",
        {"a.yaml": agent("a").encode() + b"  description: caf\xe9\n"},
        ["m/a.yaml:8:19: <file>: not valid UTF-8 (byte 0xe9)"],
    ),
    Case(
        "oversize",
        {"a.yaml": agent("a"), "b.yaml": agent("b", "  description: " + "x" * 300)},
        ["m/b.yaml:1:1: <file>: file is larger than the limit of 200 bytes"],
        max_bytes=200,
    ),
    Case(
        "unreadable",
        {"a.yaml": PermissionError(13, "Permission denied")},
        ["m/a.yaml:1:1: <file>: cannot read file: Permission denied"],
    ),
    Case(
        "syntax-error",
        {"a.yaml": agent("a", "  description: a: b")},
        ["m/a.yaml:8:17: spec: invalid YAML: mapping values are not allowed in this context"],
    ),
    Case(
        "not-a-mapping",
        {"a.yaml": "- apiVersion: devskyy.dev/v1\n"},
        [
            "m/a.yaml:1:1: <document>: expected a mapping with apiVersion, kind, metadata and "
            "spec, got a list"
        ],
    ),
    # -- schema -------------------------------------------------------------------------
    Case(
        "minimum-with-line-and-column",
        {"a.yaml": agent("a", "  retry:", "    maxAttempts: -1")},
        ["m/a.yaml:9:5: spec.retry.maxAttempts: -1 is less than the minimum of 1"],
    ),
    Case(
        "unknown-field",
        {"a.yaml": agent("a", "  retry:", "    maxAttempt: 3", "  foo: 1")},
        [
            # the most relevant error of the document first (shallowest), then by position
            "m/a.yaml:10:3: spec.foo: unknown field 'foo'",
            "m/a.yaml:9:5: spec.retry.maxAttempt: unknown field 'maxAttempt'",
        ],
    ),
    Case(
        "bad-name",
        {"a.yaml": agent("Scanner_V2")},
        [
            "m/a.yaml:4:3: metadata.name: 'Scanner_V2' is not a valid name (lowercase "
            "letters, digits, '_' and '-', starting with a letter, at most 63 long)"
        ],
    ),
    Case(
        "unknown-kind",
        {"a.yaml": agent("a").replace("kind: Agent", "kind: Agnet")},
        [
            "m/a.yaml:2:1: kind: unknown kind 'Agnet'; 'kind' must be one of Agent, Workflow, "
            "Role, RoleBinding"
        ],
    ),
    Case(
        "missing-kind",
        {"a.yaml": agent("a").replace("kind: Agent\n", "")},
        ["m/a.yaml:1:1: <document>: missing required field 'kind'"],
    ),
    Case(
        "missing-required-field",
        {"a.yaml": agent("a").replace("  module: devskyy.agents.a:Agent\n", "")},
        ["m/a.yaml:5:1: spec: missing required field 'module'"],
    ),
    Case(
        "wrong-api-version",
        {"a.yaml": agent("a").replace("devskyy.dev/v1", "devskyy.dev/v2")},
        ["m/a.yaml:1:1: apiVersion: expected 'devskyy.dev/v1', got 'devskyy.dev/v2'"],
    ),
    Case(
        "wrong-type-and-enum",
        {"a.yaml": agent("a", "  priority: urgent", "  replicas: two", "  timeoutSeconds: null")},
        [
            "m/a.yaml:10:3: spec.timeoutSeconds: null is not of type 'number'",
            "m/a.yaml:8:3: spec.priority: 'urgent' is not one of critical, high, medium, low",
            "m/a.yaml:9:3: spec.replicas: 'two' is not of type 'integer'",
        ],
    ),
    Case(
        "yaml-reads-a-number-or-boolean-where-text-is-expected",
        {"a.yaml": agent("a", "  version: 2.0", "  description: yes")},
        [
            "m/a.yaml:8:3: spec.version: 2.0 is not of type 'string'; quote it if it is meant "
            "as text",
            "m/a.yaml:9:3: spec.description: true is not of type 'string'; quote it if it is "
            "meant as text",
        ],
    ),
    Case(
        "bad-module-path",
        {"a.yaml": agent("a", module="devskyy.agents.a")},
        [
            "m/a.yaml:6:3: spec.module: 'devskyy.agents.a' is not a module path like "
            "'package.module:ClassName'"
        ],
    ),
    Case(
        "step-with-agent-and-capability",
        {
            "a.yaml": agent("a"),
            "w.yaml": workflow(
                "w", "  steps:\n    - name: s\n      agent: a\n      capability: work\n"
            ),
        },
        ["m/w.yaml:7:7: spec.steps[0]: exactly one of 'agent' or 'capability' is required"],
    ),
    Case(
        "empty-steps",
        {"w.yaml": workflow("w", "  steps: []\n")},
        ["m/w.yaml:6:3: spec.steps: must not be empty"],
    ),
    Case(
        "bad-param-name-from-the-model",
        {
            "a.yaml": agent("a"),
            "w.yaml": workflow(
                "w", "  params:\n    Bad: {}\n  steps:\n    - name: s\n      agent: a\n"
            ),
        },
        ["m/w.yaml:7:5: spec.params.Bad: String should match pattern '^[a-z][a-z0-9_-]{0,62}$'"],
    ),
    Case(
        "best-error-first-then-by-position",
        {
            "a.yaml": agent("a", "  replicas: 0", "  retry:", "    jitter: 2").replace(
                "kind: Agent\n", "kind: Agent\nextra: 1\n"
            )
        },
        [
            "m/a.yaml:3:1: extra: unknown field 'extra'",
            "m/a.yaml:9:3: spec.replicas: 0 is less than the minimum of 1",
            "m/a.yaml:11:5: spec.retry.jitter: 2 is greater than the maximum of 1",
        ],
    ),
    # -- the set ------------------------------------------------------------------------
    Case(
        "missing-dependency",
        {"a.yaml": agent("a", "  dependencies: [b, ghost]"), "b.yaml": agent("b")},
        ["m/a.yaml:8:21: spec.dependencies[1]: unknown agent 'ghost'"],
    ),
    Case(
        "dependency-cycle-path",
        {
            "a.yaml": agent("a", "  dependencies: [b]"),
            "b.yaml": agent("b", "  dependencies: [c]"),
            "c.yaml": agent("c", "  dependencies: [a]"),
        },
        [  # in each agent's file, from that agent
            "m/a.yaml:8:18: spec.dependencies[0]: dependency cycle: a -> b -> c -> a",
            "m/b.yaml:8:18: spec.dependencies[0]: dependency cycle: b -> c -> a -> b",
            "m/c.yaml:8:18: spec.dependencies[0]: dependency cycle: c -> a -> b -> c",
        ],
    ),
    Case(
        "self-dependency",
        {"a.yaml": agent("a", "  dependencies: [a]")},
        ["m/a.yaml:8:18: spec.dependencies[0]: dependency cycle: a -> a"],
    ),
    Case(
        "disallowed-module-prefix",
        {"a.yaml": agent("a", module="os.path:join"), "b.yaml": agent("b", module="acme.x:B")},
        [
            "m/a.yaml:6:3: spec.module: module 'os.path:join' is outside the allowed prefixes "
            "(devskyy.agents, acme); add its package to DEVSKYY_ALLOWED_MODULES"
        ],
        prefixes=("acme",),
    ),
    Case(
        "prefix-matches-whole-package-names",
        {"a.yaml": agent("a", module="devskyy.agentsx.evil:A")},
        [
            "m/a.yaml:6:3: spec.module: module 'devskyy.agentsx.evil:A' is outside the allowed "
            "prefixes (devskyy.agents); add its package to DEVSKYY_ALLOWED_MODULES"
        ],
    ),
    Case(
        "duplicate-names-across-files",
        {"a.yaml": agent("scanner"), "z/b.yaml": agent("scanner")},
        [
            "m/z/b.yaml:4:3: metadata.name: duplicate Agent name 'scanner' "
            "(first defined at m/a.yaml:4:3)"
        ],
    ),
    Case(
        "duplicate-names-in-one-file",
        {"a.yaml": agent("a") + "---\n" + agent("a")},
        ["m/a.yaml:12:3: metadata.name: duplicate Agent name 'a' (first defined at m/a.yaml:4:3)"],
    ),
    Case(
        "step-agent-and-capability-resolve",
        {
            "a.yaml": agent("a"),
            "w.yaml": workflow(
                "w",
                "  steps:\n"
                "    - name: s1\n      agent: ghost\n"
                "    - name: s2\n      capability: teleport\n",
            ),
        },
        [
            "m/w.yaml:8:7: spec.steps[0].agent: unknown agent 'ghost'",
            "m/w.yaml:10:7: spec.steps[1].capability: no agent offers capability 'teleport'",
        ],
    ),
    Case(
        "needs-unknown-step",
        {
            "a.yaml": agent("a"),
            "w.yaml": workflow(
                "w", "  steps:\n    - name: s1\n      agent: a\n      needs: [s0]\n"
            ),
        },
        ["m/w.yaml:9:15: spec.steps[0].needs[0]: unknown step 's0'"],
    ),
    Case(
        "step-cycle",
        {
            "a.yaml": agent("a"),
            "w.yaml": workflow(
                "w",
                "  steps:\n"
                "    - name: s1\n      agent: a\n      needs: [s2]\n"
                "    - name: s2\n      agent: a\n      needs: [s1]\n",
            ),
        },
        ["m/w.yaml:9:15: spec.steps[0].needs[0]: step cycle: s1 -> s2 -> s1"],
    ),
    Case(
        "duplicate-step-names",
        {
            "a.yaml": agent("a"),
            "w.yaml": workflow(
                "w", "  steps:\n    - name: s\n      agent: a\n    - name: s\n      agent: a\n"
            ),
        },
        ["m/w.yaml:9:7: spec.steps[1].name: duplicate step name 's' (first at spec.steps[0])"],
    ),
    Case(
        "bad-expression",
        {
            "a.yaml": agent("a"),
            "w.yaml": workflow(
                "w",
                "  steps:\n"
                "    - name: s\n      agent: a\n"
                "      input:\n        files: ['${{ steps.x[ }}']\n"
                "        path: ${{ os.environ }}\n",
            ),
        },
        [
            "m/w.yaml:10:17: spec.steps[0].input.files[0]: invalid expression 'steps.x[': "
            "Invalid jmespath expression: Incomplete expression",
            "m/w.yaml:11:9: spec.steps[0].input.path: expression 'os.environ' refers to 'os'; "
            "use params.* or steps.*",
        ],
    ),
    Case(
        "bad-when-condition",
        {
            "a.yaml": agent("a"),
            "w.yaml": workflow(
                "w", "  steps:\n    - name: s\n      agent: a\n      when: '${{ ]] }}'\n"
            ),
        },
        [
            "m/w.yaml:9:7: spec.steps[0].when: invalid expression ']]': invalid token: Parse "
            'error at column 0, token "]" (RBRACKET)'
        ],
    ),
    Case(
        "expression-reads-a-step-not-in-needs",
        {
            "a.yaml": agent("a"),
            "w.yaml": workflow(
                "w",
                "  steps:\n"
                "    - name: scan\n      agent: a\n"
                "    - name: other\n      agent: a\n"
                "    - name: fix\n      agent: a\n      needs: [other]\n"
                "      when: ${{ steps.scan.output.count > `0` }}\n"
                "      input:\n        results: ${{ steps.scan.output }}\n"
                "        mine: ${{ steps.fix.output }}\n"
                "        every: ${{ steps }}\n"
                "        later: ${{ steps.ghost.output }}\n",
            ),
        },
        [
            "m/w.yaml:14:7: spec.steps[2].when: 'steps.scan.output.count > `0`': step 'scan' is "
            "not in the needs of step 'fix' (directly or through other steps)",
            "m/w.yaml:16:9: spec.steps[2].input.results: 'steps.scan.output': step 'scan' is "
            "not in the needs of step 'fix' (directly or through other steps)",
            "m/w.yaml:17:9: spec.steps[2].input.mine: 'steps.fix.output': a step cannot read "
            "its own output",
            "m/w.yaml:18:9: spec.steps[2].input.every: 'steps': name one step (steps.<name>...)",
            "m/w.yaml:19:9: spec.steps[2].input.later: 'steps.ghost.output': unknown step 'ghost'",
        ],
    ),
    Case(
        "undeclared-param-and-bad-default",
        {
            "a.yaml": agent("a"),
            "w.yaml": workflow(
                "w",
                "  params:\n    limit: {type: integer, default: ten}\n"
                "  steps:\n    - name: s\n      agent: a\n"
                "      input:\n        n: ${{ params.limit }}\n        m: ${{ params.nope }}\n",
            ),
        },
        [
            "m/w.yaml:7:28: spec.params.limit.default: default 'ten' is not of type 'integer'",
            "m/w.yaml:13:9: spec.steps[0].input.m: 'params.nope': param 'nope' is not declared",
        ],
    ),
    Case(
        "binding-to-unknown-role",
        {
            "b.yaml": BINDING.format(name="b1", role="auditor")
            + "---\n"
            + BINDING.format(name="b2", role="admin")
            + "---\n"
            + BINDING.format(name="b3", role="custom"),
            "r.yaml": ROLE.format(name="custom"),
        },
        ["m/b.yaml:6:3: spec.role: unknown role 'auditor'"],
    ),
    Case(
        "a-broken-document-does-not-cascade",
        {
            "a.yaml": agent("a", "  replicas: 0"),
            "b.yaml": agent("b", "  dependencies: [a]"),
            "c.yaml": agent("c", "  priority: high", "  priority: low"),
            "d.yaml": agent("d", "  dependencies: [c]"),
        },
        [
            "m/a.yaml:8:3: spec.replicas: 0 is less than the minimum of 1",
            "m/c.yaml:9:3: spec.priority: duplicate key 'priority' (first defined at line 8, "
            "column 3)",
        ],
    ),
    Case(
        "every-problem-of-the-run-at-once",
        {
            "agents/a.yaml": agent("a", "  dependencies: [ghost]"),
            "agents/b.yaml": agent("b", module="evil:B"),
            "roles/r.yaml": BINDING.format(name="rb", role="nobody"),
            "workflows/w.yaml": b"\xff",
        },
        [  # the unreadable file might define 'ghost' and 'nobody': those come last
            "m/agents/b.yaml:6:3: spec.module: module 'evil:B' is outside the allowed prefixes "
            "(devskyy.agents); add its package to DEVSKYY_ALLOWED_MODULES",
            "m/workflows/w.yaml:1:1: <file>: not valid UTF-8 (byte 0xff)",
            "m/agents/a.yaml:8:18: spec.dependencies[0]: unknown agent 'ghost' "
            "(perhaps a consequence of the broken m/workflows/w.yaml above)",
            "m/roles/r.yaml:6:3: spec.role: unknown role 'nobody' "
            "(perhaps a consequence of the broken m/workflows/w.yaml above)",
        ],
    ),
]


def run(case: Case) -> list[str]:
    files = MemoryManifestFiles(
        {f"m/{k}": v.encode() if isinstance(v, str) else v for k, v in case.files.items()}
    )
    result = validate_tree("m", case.prefixes, files=files, max_bytes=case.max_bytes)
    return [str(p) for p in result.problems]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_tree_reports_exactly(case: Case) -> None:
    assert run(case) == case.expected


VALID = [
    Case(
        "same-name-different-kinds",
        {"a.yaml": agent("admin"), "r.yaml": ROLE.format(name="admin")},
        [],
    ),
    Case(
        "extra-prefix-allows-module",
        {"a.yaml": agent("a", module="acme.agents.x:A")},
        [],
        prefixes=(" acme.agents ", ""),
    ),
    Case(
        "transitive-needs-may-be-read",
        {
            "a.yaml": agent("a"),
            "w.yaml": workflow(
                "w",
                "  params:\n    p: {type: number, default: 1}\n"
                "  steps:\n"
                "    - name: one\n      agent: a\n"
                "    - name: two\n      capability: work\n      needs: [one]\n"
                "    - name: three\n      agent: a\n      needs: [two]\n"
                "      when: steps.one.output.ok\n"
                "      input:\n        x: 'from ${{ steps.one.output.x }} and ${{ params.p }}'\n"
                "        all: ${{ params }}\n",
            ),
        },
        [],
    ),
    Case("empty-documents-are-skipped", {"a.yaml": "# nothing\n---\n" + agent("a") + "---\n"}, []),
]


@pytest.mark.parametrize("case", VALID, ids=[c.id for c in VALID])
def test_valid_tree_has_no_problems(case: Case) -> None:
    assert run(case) == []


def test_load_desired_returns_models_or_raises_with_every_problem() -> None:

    good = MemoryManifestFiles({"m/a.yaml": agent("a").encode(), "m/b.yaml": agent("b").encode()})
    resources = load_desired("m", [], files=good)
    assert sorted(m.name for m in resources.agents) == ["a", "b"]
    assert isinstance(resources.get("Agent", "a"), Agent)

    case = next(c for c in CASES if c.id == "every-problem-of-the-run-at-once")
    bad = MemoryManifestFiles(
        {f"m/{k}": v.encode() if isinstance(v, str) else v for k, v in case.files.items()}
    )
    with pytest.raises(ManifestError) as info:
        load_desired("m", [], files=bad)
    assert [str(p) for p in info.value.problems] == case.expected
    assert str(info.value) == "\n".join(case.expected)


def test_load_desired_reads_allowed_prefixes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    files = MemoryManifestFiles({"m/a.yaml": agent("a", module="acme.x:A").encode()})
    with pytest.raises(ManifestError):
        load_desired("m", files=files)
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "other, acme ,")
    assert allowed_prefixes_from_env() == ["other", "acme"]
    assert [m.name for m in load_desired("m", files=files)] == ["a"]


def test_missing_path_and_empty_tree_are_one_problem_each() -> None:
    files = MemoryManifestFiles({"m/readme.txt": b"hi"})
    assert [str(p) for p in validate_tree("nope", [], files=files).problems] == [
        "nope:1:1: <file>: no such file or directory"
    ]
    assert [str(p) for p in validate_tree("m", [], files=files).problems] == [
        "m:1:1: <file>: no manifests found (*.yaml or *.yml files)"
    ]


_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_names = st.sampled_from(["a", "b", "s1", "s2", "Bad", ""])
_steps = st.lists(
    st.fixed_dictionaries(
        {"name": _names},
        optional={
            "agent": _names,
            "capability": _names,
            "needs": st.lists(_names, max_size=3) | _scalars,
            "input": st.dictionaries(
                st.text(max_size=5),
                st.sampled_from(["${{ steps.s1.output }}", "${{ params.p }}", "${{ ][ }}", "x"]),
                max_size=2,
            ),
            "when": st.sampled_from(["steps.s2.output", "${{ params.q }}", "((", ""]),
        },
    ),
    max_size=3,
)
_documents = st.fixed_dictionaries(
    {
        "apiVersion": st.just("devskyy.dev/v1"),
        "kind": st.sampled_from(["Agent", "Workflow", "Role", "RoleBinding", "Other"]),
        "metadata": st.fixed_dictionaries({"name": _names}) | _values,
    },
    optional={
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "module": st.sampled_from(["devskyy.agents.a:A", "os:system", "bad"]),
                "dependencies": st.lists(_names, max_size=3),
                "capabilities": st.lists(_names, max_size=2),
                "steps": _steps,
                "params": st.dictionaries(_names, st.just({"type": "string"}), max_size=2),
                "role": _names,
                "subjects": st.just([{"kind": "User", "name": "u"}]),
                "rules": st.just([{"resources": ["agents"], "permissions": ["read"]}]),
            },
        )
        | _values
    },
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_documents, max_size=4))
def test_any_document_shapes_give_problems_never_an_exception(docs: list[dict[str, Any]]) -> None:
    text = "---\n".join(yaml.safe_dump(d) for d in docs)
    files = MemoryManifestFiles({"m/all.yaml": text.encode()})
    result = validate_tree("m", [], files=files)
    for problem in result.problems:
        assert problem.file == "m/all.yaml"
        assert "\n" not in problem.message
    if not result.problems:
        assert len(result.resources) == len(docs)
