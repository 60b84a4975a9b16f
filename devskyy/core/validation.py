"""Validation of a manifest set: JSON Schema per document, then the set as a whole.

Pure: documents (from ``devskyy.core.yaml_strict``) in, a ``ResourceSet`` and every
``Problem`` out. Three passes, each reporting everything it finds:

1. **Schema.** Each document is checked against its kind's JSON Schema (Draft 2020-12,
   ``devskyy.model.schemas.schema_for``) by ``devskyy.core.schema_check``: one error per
   location, the document's most relevant error first, messages worded for people.
2. **Models.** Valid documents become the pydantic models of ``devskyy.model.manifests``.
3. **The set.** Names unique per kind; agent dependencies, step agents, capabilities,
   ``needs`` and binding roles resolve; no dependency or step cycle (printed as a path
   ``a -> b -> a``); agent modules only under allowed prefixes (never imported here);
   workflow expressions parse, and ``${{ steps.X }}`` / ``${{ params.Y }}`` name a step
   among the step's transitive ``needs`` and a declared param.

Documents that failed loading or schema validation still lend their kind and name to
the set checks, so that one typo does not cascade into "unknown agent" elsewhere. When a
file is too broken to say which resources it defines (a YAML syntax error ends the file
there), the "unknown agent/role/capability" problems elsewhere may be its consequences:
they are marked so, naming the broken file, and listed after every other problem.
A dependency cycle is reported in the document of each agent on it (each file shows
the cycle from its own agent), and an expression that fails on a bare number hints at
JMESPath's back-quoted literals.

Order of the problems: consequences last; otherwise by file, then document, the
document's most relevant schema error first, then by line and column. Cost grows
linearly with the number of documents; ancestor sets are computed only for steps whose
expressions read other steps.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devskyy.core import cycles as graphs
from devskyy.core import schedules
from devskyy.core.expressions import Expression, ExpressionError, parse_condition, templates_in
from devskyy.core.schema_check import check_document, show
from devskyy.core.yaml_strict import Document, JsonPath, LoadResult
from devskyy.model.manifests import KINDS, Agent, Manifest, RoleBinding, Workflow
from devskyy.model.problems import FILE, Problem
from devskyy.model.resources import ResourceKey, ResourceSet

DEFAULT_MODULE_PREFIX = "devskyy.agents"
BUILTIN_ROLES = frozenset({"admin", "operator", "analyst", "service", "guest"})
KIND_LIST = ", ".join(KINDS)

_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _of_type(value: Any, kind: str) -> bool:
    """Whether ``value`` is of the declared param type (a bool is no number)."""
    wanted = _PARAM_TYPES[kind]
    return isinstance(value, wanted) and not (isinstance(value, bool) and bool not in wanted)


AgentCheck = Callable[[Agent], Sequence[tuple[JsonPath, str]]]
"""An optional, injected check of one allowed agent (its class and config): the
problems it finds, each as (JSON path inside the document, message)."""


@dataclass(frozen=True)
class Validated:
    """The outcome of validating a tree: the resources, and every problem found."""

    resources: ResourceSet
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Entry:
    """One document taking part in the set checks."""

    doc: Document
    kind: str
    name: str
    manifest: Manifest | None


class _Collector:
    """Problems with their place in the printed order (file, document, rank, position)."""

    def __init__(self, loaded: Sequence[LoadResult]) -> None:
        self.items: list[tuple[tuple[Any, ...], Problem]] = []
        self._starts: dict[str, list[int]] = {}
        for result in loaded:
            for doc in result.documents:
                self._starts.setdefault(doc.file, []).append(doc.line)

    def add(self, problem: Problem, rank: int = 1, *, consequence: bool = False) -> None:
        starts = self._starts.get(problem.file, [])
        doc_index = bisect.bisect_right(starts, problem.line) - 1
        place = (problem.file, doc_index, rank, problem.line, problem.column, problem.path)
        self.items.append(((consequence, *place), problem))

    def sorted(self) -> tuple[Problem, ...]:
        seen: set[Problem] = set()
        out: list[Problem] = []
        for _key, problem in sorted(self.items, key=lambda item: (item[0], item[1].message)):
            if problem not in seen:
                seen.add(problem)
                out.append(problem)
        return tuple(out)


@dataclass(frozen=True)
class _Unknown:
    """How to word a reference to a name no document defines.

    A broken document may be why: ``named`` maps a name to the files whose document
    carries that name but no usable kind; ``stopped`` are files whose loading stopped
    (a YAML syntax error, an unreadable file, a document without a name) and may define
    any name. Such a problem is marked as a consequence and listed after the rest.
    """

    stopped: tuple[str, ...] = ()
    named: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def add(self, out: _Collector, problem: Problem, name: str) -> None:
        named = self.named.get(name, ())
        if named:
            note = f"a consequence of the broken {' and '.join(named)} above"
        elif self.stopped:
            note = f"perhaps a consequence of the broken {' and '.join(self.stopped)} above"
        else:
            out.add(problem)
            return
        marked = Problem(
            problem.file, problem.line, problem.column, problem.path, f"{problem.message} ({note})"
        )
        out.add(marked, consequence=True)


def _document_entry(doc: Document, out: _Collector) -> _Entry | None:
    """Schema-check one document and build its model; None when it cannot take part."""
    data = doc.data
    if not isinstance(data, dict):
        what = "a list" if isinstance(data, list) else show(data)
        out.add(
            doc.problem(
                (), f"expected a mapping with apiVersion, kind, metadata and spec, got {what}"
            ),
            rank=0,
        )
        return None
    kind = data.get("kind")
    if "kind" not in data:
        out.add(doc.problem((), "missing required field 'kind'"), rank=0)
        return None
    if not isinstance(kind, str) or kind not in KINDS:
        out.add(
            doc.problem(("kind",), f"unknown kind {show(kind)}; 'kind' must be one of {KIND_LIST}"),
            rank=0,
        )
        return None
    meta = data.get("metadata")
    raw_name = meta.get("name") if isinstance(meta, dict) else None
    name = raw_name if isinstance(raw_name, str) else None
    manifest, problems = check_document(doc, kind)
    for rank, problem in problems:
        out.add(problem, rank)
    if name is None:
        return None
    return _Entry(doc, kind, name, manifest)


def _agent_dependencies_path(index: int) -> JsonPath:
    return ("spec", "dependencies", index)


def _cycle_text(cycle: Sequence[str]) -> str:
    return " -> ".join([*cycle, cycle[0]])


def _module_allowed(module: str, prefixes: Sequence[str]) -> bool:
    name = module.split(":", 1)[0]
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def normalize_prefixes(extra: Sequence[str] | None) -> tuple[str, ...]:
    """``devskyy.agents`` plus the given prefixes, stripped, de-duplicated, in order."""
    out = [DEFAULT_MODULE_PREFIX]
    for raw in extra or ():
        prefix = raw.strip().rstrip(".").strip()
        if prefix and prefix not in out:
            out.append(prefix)
    return tuple(out)


def _check_agents(
    entries: list[_Entry],
    prefixes: Sequence[str],
    out: _Collector,
    check_agent: AgentCheck | None = None,
    unknown: _Unknown = _Unknown(),
) -> None:
    agent_names = {e.name for e in entries if e.kind == "Agent"}
    edges: dict[str, list[str]] = {}
    where: dict[tuple[str, str], tuple[Document, int]] = {}
    for entry in entries:
        manifest = entry.manifest
        if not isinstance(manifest, Agent):
            continue
        spec = manifest.spec
        if not _module_allowed(spec.module, prefixes):
            out.add(
                entry.doc.problem(
                    ("spec", "module"),
                    f"module {spec.module!r} is outside the allowed prefixes "
                    f"({', '.join(prefixes)}); add its package to DEVSKYY_ALLOWED_MODULES",
                )
            )
        elif check_agent is not None:
            for path, message in check_agent(manifest):
                out.add(entry.doc.problem(path, message))
        targets = edges.setdefault(entry.name, [])
        for index, dep in enumerate(spec.dependencies):
            if dep not in agent_names:
                unknown.add(
                    out,
                    entry.doc.problem(_agent_dependencies_path(index), f"unknown agent {dep!r}"),
                    dep,
                )
                continue
            targets.append(dep)
            where.setdefault((entry.name, dep), (entry.doc, index))
    for cycle in graphs.cycles(edges):
        # In each agent's own document: its files may be far apart, and whoever opens
        # one of them sees the cycle from that agent.
        for at in range(len(cycle)):
            here = [*cycle[at:], *cycle[:at]]
            doc, index = where[(here[0], here[1 % len(here)])]
            out.add(
                doc.problem(
                    _agent_dependencies_path(index), f"dependency cycle: {_cycle_text(here)}"
                )
            )


def _expressions(value: Any, path: JsonPath) -> Iterator[tuple[JsonPath, str]]:
    """Every string leaf holding ``${{`` inside a step's input, with its path."""
    if isinstance(value, str):
        if "${{" in value:
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _expressions(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _expressions(item, (*path, index))


def _one_line(exc: Exception) -> str:
    """The first line of an error (JMESPath adds a caret drawing below it)."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return lines[0].rstrip(":").removesuffix(", for expression").strip()


_BARE_NUMBER = re.compile(r'column (\d+), token "(-?\d+)" \(NUMBER\)')


def _inner(source: str) -> str:
    """The expression inside one ``${{ … }}`` (or the bare text), stripped."""
    text = source.strip()
    if text.startswith("${{") and text.endswith("}}"):
        return text[3:-2].strip()
    return text


def _expression_error(exc: Exception, source: str) -> str:
    """The error's first line; on a bare number, JMESPath's literal syntax as a hint.

    JMESPath reads ``count > 0`` as a syntax error: a number outside an index must be a
    literal in back quotes (``count > `0```). People write the bare number first.
    """
    message = _one_line(exc)
    found = _BARE_NUMBER.search(message)
    if found is None:
        return message
    column, number = int(found.group(1)), found.group(2)
    text = _inner(source)
    if text[column : column + len(number)] == number:
        fixed = f"{text[:column]}`{number}`{text[column + len(number) :]}"
        return f"{message}; JMESPath literals go in back quotes: {fixed!r}"
    return f"{message}; JMESPath literals go in back quotes: `{number}`"


def _check_references(
    expressions: list[Expression],
    step: str,
    ancestors: Callable[[str], set[str]],
    steps: set[str],
    params: set[str],
) -> list[str]:
    messages: list[str] = []
    for expression in expressions:
        for ref in sorted(expression.references, key=lambda r: (r.root, r.name or "")):
            if ref.root == "params":
                if ref.name is not None and ref.name not in params:
                    messages.append(f"{expression.source!r}: param {ref.name!r} is not declared")
            elif ref.name is None:
                messages.append(f"{expression.source!r}: name one step (steps.<name>...)")
            elif ref.name == step:
                messages.append(f"{expression.source!r}: a step cannot read its own output")
            elif ref.name not in steps:
                messages.append(f"{expression.source!r}: unknown step {ref.name!r}")
            elif ref.name not in ancestors(step):
                messages.append(
                    f"{expression.source!r}: step {ref.name!r} is not in the needs of "
                    f"step {step!r} (directly or through other steps)"
                )
    return messages


def _check_workflow(
    entry: _Entry,
    workflow: Workflow,
    agent_names: set[str],
    capabilities: set[str],
    out: _Collector,
    *,
    unknown: _Unknown = _Unknown(),
) -> None:
    doc = entry.doc
    spec = workflow.spec
    first: dict[str, int] = {}
    for index, step in enumerate(spec.steps):
        if step.name in first:
            out.add(
                doc.problem(
                    ("spec", "steps", index, "name"),
                    f"duplicate step name {step.name!r} (first at spec.steps[{first[step.name]}])",
                )
            )
        else:
            first[step.name] = index
    steps = set(first)
    edges: dict[str, list[str]] = {}
    where: dict[tuple[str, str], int] = {}
    for index, step in enumerate(spec.steps):
        base: JsonPath = ("spec", "steps", index)
        if step.agent is not None and step.agent not in agent_names:
            unknown.add(
                out, doc.problem((*base, "agent"), f"unknown agent {step.agent!r}"), step.agent
            )
        if step.capability is not None and step.capability not in capabilities:
            unknown.add(
                out,
                doc.problem(
                    (*base, "capability"), f"no agent offers capability {step.capability!r}"
                ),
                "",  # a capability is no document's name: only a stopped file explains it
            )
        targets = edges.setdefault(step.name, [])
        for n, need in enumerate(step.needs):
            if need not in steps:
                out.add(doc.problem((*base, "needs", n), f"unknown step {need!r}"))
                continue
            targets.append(need)
            where.setdefault((step.name, need), n)
    for cycle in graphs.cycles(edges):
        owner = first[cycle[0]]
        n = where[(cycle[0], cycle[1 % len(cycle)])]
        out.add(
            doc.problem(("spec", "steps", owner, "needs", n), f"step cycle: {_cycle_text(cycle)}")
        )
    _check_params(doc, workflow, out)
    _check_schedules(doc, workflow, out)
    params = set(spec.params)
    # Ancestor sets only for steps whose expressions read other steps, once each.
    ancestors = functools.cache(functools.partial(graphs.reachable, edges))
    for index, step in enumerate(spec.steps):
        base = ("spec", "steps", index)
        for path, text in _expressions(step.input, (*base, "input")):
            try:
                found = templates_in(text)
            except ExpressionError as exc:
                out.add(doc.problem(path, _expression_error(exc, text)))
                continue
            for message in _check_references(found, step.name, ancestors, steps, params):
                out.add(doc.problem(path, message))
        if step.when is not None:
            try:
                condition = parse_condition(step.when)
            except ExpressionError as exc:
                out.add(doc.problem((*base, "when"), _expression_error(exc, step.when)))
                continue
            for message in _check_references([condition], step.name, ancestors, steps, params):
                out.add(doc.problem((*base, "when"), message))


def _check_params(doc: Document, workflow: Workflow, out: _Collector) -> None:
    for name, param in workflow.spec.params.items():
        default = param.default
        if default is None:
            continue
        if not _of_type(default, param.type):
            out.add(
                doc.problem(
                    ("spec", "params", name, "default"),
                    f"default {show(default)} is not of type '{param.type}'",
                )
            )


def _check_schedules(doc: Document, workflow: Workflow, out: _Collector) -> None:
    """Cron expressions, time zones and params of ``spec.schedules`` (core/schedules)."""
    declared = workflow.spec.params
    for index, schedule in enumerate(workflow.spec.schedules):
        base: JsonPath = ("spec", "schedules", index)
        try:
            cron = schedules.cron_problem(schedule.cron)
        except ModuleNotFoundError:
            cron = "checking cron expressions needs croniter: pip install 'devskyy[watch]'"
        if cron is not None:
            out.add(doc.problem((*base, "cron"), cron))
        zone = schedules.zone_problem(schedule.timezone)
        if zone is not None:
            out.add(doc.problem((*base, "timezone"), zone))
        for name in sorted(set(schedule.params) - set(declared)):
            known = ", ".join(sorted(declared)) or "none"
            message = f"unknown param {name!r} (declared: {known})"
            out.add(doc.problem((*base, "params", name), message))
        for name, param in declared.items():
            if name not in schedule.params:
                if param.required and param.default is None:
                    out.add(doc.problem((*base, "params"), f"missing required param {name!r}"))
                continue
            value = schedule.params[name]
            if not _of_type(value, param.type):
                out.add(
                    doc.problem(
                        (*base, "params", name),
                        f"{show(value)} is not of type '{param.type}'",
                    )
                )


def _check_unique(entries: list[_Entry], out: _Collector) -> list[_Entry]:
    """Report every repeated (kind, name); keep the first of each."""
    first: dict[ResourceKey, _Entry] = {}
    kept: list[_Entry] = []
    for entry in entries:
        key = ResourceKey(entry.kind, entry.name)
        if key in first:
            line, column = first[key].doc.locate(("metadata", "name"))
            out.add(
                entry.doc.problem(
                    ("metadata", "name"),
                    f"duplicate {entry.kind} name {entry.name!r} "
                    f"(first defined at {first[key].doc.file}:{line}:{column})",
                )
            )
            continue
        first[key] = entry
        kept.append(entry)
    return kept


def validate_set(
    loaded: Sequence[LoadResult],
    allowed_prefixes: Sequence[str] | None = None,
    extra_problems: Sequence[Problem] = (),
    check_agent: AgentCheck | None = None,
) -> Validated:
    """Validate every loaded document and the set they form; see the module docstring.

    ``allowed_prefixes`` are module prefixes allowed besides ``devskyy.agents``;
    ``extra_problems`` (unreadable files, for instance) are merged into the ordering;
    ``check_agent``, when given, is asked about every valid agent whose module is allowed.
    """
    out = _Collector(loaded)
    for problem in extra_problems:
        out.add(problem, rank=0)
    entries: list[_Entry] = []
    stopped = {p.file for p in extra_problems}
    named: dict[str, set[str]] = {}
    for result in loaded:
        for problem in result.problems:
            out.add(problem)
            if problem.path == FILE or problem.message.startswith("invalid YAML"):
                stopped.add(problem.file)  # loading stopped: later resources are lost
        for doc in result.documents:
            if doc.data is None:
                continue
            entry = _document_entry(doc, out) if doc.ok else _raw_entry(doc)
            if entry is not None:
                entries.append(entry)
            elif (name := _raw_name(doc)) is not None:
                named.setdefault(name, set()).add(doc.file)  # a name without a usable kind
            else:
                stopped.add(doc.file)  # no name: it could have been any
    unknown = _Unknown(
        tuple(sorted(stopped)), {name: tuple(sorted(files)) for name, files in named.items()}
    )
    kept = _check_unique(entries, out)
    prefixes = normalize_prefixes(allowed_prefixes)
    _check_agents(kept, prefixes, out, check_agent, unknown=unknown)
    agent_names = {e.name for e in kept if e.kind == "Agent"}
    capabilities = {cap for e in kept if e.kind == "Agent" for cap in _raw_capabilities(e.doc)}
    role_names = {e.name for e in kept if e.kind == "Role"} | BUILTIN_ROLES
    for entry in kept:
        if isinstance(entry.manifest, Workflow):
            _check_workflow(entry, entry.manifest, agent_names, capabilities, out, unknown=unknown)
        elif isinstance(entry.manifest, RoleBinding) and entry.manifest.spec.role not in role_names:
            unknown.add(
                out,
                entry.doc.problem(("spec", "role"), f"unknown role {entry.manifest.spec.role!r}"),
                entry.manifest.spec.role,
            )
    manifests = tuple(e.manifest for e in kept if e.manifest is not None)
    return Validated(ResourceSet(manifests), out.sorted())


def _raw_name(doc: Document) -> str | None:
    meta = doc.data.get("metadata") if isinstance(doc.data, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else None


def _raw_entry(doc: Document) -> _Entry | None:
    """The kind and name of a document that failed loading, so that it is not "unknown"."""
    data = doc.data
    # The kind may be anything a broken file holds (a list after a refused tag): unhashable.
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return None
    if data["kind"] not in KINDS:
        return None
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return _Entry(doc, str(data["kind"]), name, None) if isinstance(name, str) else None


def _raw_capabilities(doc: Document) -> list[str]:
    """Capabilities of an agent document, read from the raw data (valid or not)."""
    spec = doc.data.get("spec") if isinstance(doc.data, dict) else None
    caps = spec.get("capabilities") if isinstance(spec, dict) else None
    return [c for c in caps if isinstance(c, str)] if isinstance(caps, list) else []
