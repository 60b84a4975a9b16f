"""A fuzzer over manifest trees: mutations of the shipped manifests/ never crash validate.

Each example copies the shipped tree and applies a few mutations (a value of another type,
keys renamed, added or dropped, unicode and control characters, deep nesting, YAML tags,
anchors and aliases, raw bytes, truncation, deep ``${{ }}`` expressions, files emptied,
removed or added), then runs ``devskyy validate`` in-process. The only outcomes allowed are
exit 0 (``…: valid``) and exit 1 with one ``file:line:col: path: message`` line per problem
and the count; never an internal error, a traceback, or a line of another shape.

CI runs a bounded number of examples (``DEVSKYY_FUZZ_EXAMPLES``, default 200, well under a
minute); a long local run is the same test with a larger number, e.g.
``DEVSKYY_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_manifests.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devskyy.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "manifests"
FILES = sorted(p.relative_to(SHIPPED).as_posix() for p in SHIPPED.rglob("*.yaml"))
EXAMPLES = int(os.environ.get("DEVSKYY_FUZZ_EXAMPLES", "200"))

PROBLEM = re.compile(r"^manifests(/[^:\n]*)?:\d+:\d+: [^\n]*$")
SUMMARY = re.compile(r"^manifests: \d+ problems?$")
VALID = re.compile(
    r"^manifests: \d+ roles?, \d+ role bindings?, \d+ agents?, \d+ workflows?: valid$"
)

# -- mutations: each takes the file's bytes and a draw function, returns new bytes -------

Draw = Callable[[st.SearchStrategy[Any]], Any]

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
TAGS = [
    "!!python/object/apply:os.system ['true']",
    "!!binary aGVsbG8=",
    "!!str",
    "!!int '3'",
    "!custom x",
    "!!timestamp 2001-12-14",
    "!!set {a, b}",
    "!!omap [a: 1]",
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(_paths(item, (*prefix, index)))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return doc


def _structured(
    data: bytes, draw: Draw, change: Callable[[Any, tuple[Any, ...], Draw], Any]
) -> bytes:
    """Load every document, change one node, dump again (as a YAML user would write it)."""
    try:
        docs = list(yaml.safe_load_all(data))
    except Exception:  # PyYAML's own bugs too (a bad timestamp: AttributeError)
        return data
    if not docs:
        return data
    index = draw(st.integers(0, len(docs) - 1))
    paths = _paths(docs[index])
    path = draw(st.sampled_from(paths))
    docs[index] = change(docs[index], path, draw)
    try:
        text = yaml.safe_dump_all(docs, allow_unicode=draw(st.booleans()), sort_keys=False)
    except yaml.YAMLError:
        return data
    return text.encode("utf-8", "surrogatepass")


def _retype(doc: Any, path: tuple[Any, ...], draw: Draw) -> Any:
    other = draw(
        st.one_of(
            SCALARS,
            st.lists(SCALARS, max_size=3),
            st.dictionaries(st.text(max_size=8), SCALARS, max_size=3),
        )
    )
    return _set(doc, path, other)


def _rekey(doc: Any, path: tuple[Any, ...], draw: Draw) -> Any:
    target = doc
    for part in path:
        target = target[part]
    if not isinstance(target, dict):
        return doc
    action = draw(st.sampled_from(["rename", "add", "drop"]))
    keys = list(target)
    new_key = draw(
        st.one_of(st.text(max_size=12), st.sampled_from(["spec", "kind", "name", "on", "1"]))
    )
    if action == "add" or not keys:
        target[new_key] = draw(SCALARS)
    elif action == "drop":
        del target[draw(st.sampled_from(keys))]
    else:
        old = draw(st.sampled_from(keys))
        target[new_key] = target.pop(old)
    return doc


def _nest(doc: Any, path: tuple[Any, ...], draw: Draw) -> Any:
    depth = draw(st.sampled_from([5, 31, 32, 33, 100, 500]))
    value: Any = draw(SCALARS)
    for _ in range(depth):
        value = [value] if draw(st.booleans()) else {"k": value}
    return _set(doc, path, value)


def _expression(doc: Any, path: tuple[Any, ...], draw: Draw) -> Any:
    shape = draw(st.sampled_from(["(", "!", "[?", "abs(", "{k: ", "[", "`["]))
    levels = draw(st.sampled_from([1, 10, 33, 65, 1_000, 5_000]))
    closing = {"(": ")", "!": "", "[?": "]", "abs(": ")", "{k: ": "} ", "[": "]", "`[": "]"}
    body = shape * levels + "params.x" + closing[shape] * levels
    if shape == "`[":
        body = "`" + "[" * levels + "1" + "]" * levels + "`"
    joiner = draw(st.sampled_from(["", " || ", " && ", " | "]))
    if joiner:
        body = joiner.join(["params.x"] * levels)
    return _set(doc, path, "${{ " + body + " }}")


def _raw_text(data: bytes, draw: Draw) -> bytes:
    text = data.decode("utf-8", "replace")
    at = draw(st.integers(0, len(text)))
    insert: str = draw(
        st.one_of(
            st.text(max_size=30),
            st.sampled_from(["\t", "\x00", "\x1b[31m", "\ufeff", "\u202e", ": :", "- -", "{", "]"]),
            st.sampled_from(TAGS),
            st.sampled_from(["&a ", "*a", "<<: *a\n", "&a [1, 2]\nb: *a\n"]),
        )
    )
    return (text[:at] + insert + text[at:]).encode("utf-8", "surrogatepass")


def _raw_bytes(data: bytes, draw: Draw) -> bytes:
    at = draw(st.integers(0, len(data)))
    action = draw(st.sampled_from(["insert", "replace", "truncate", "duplicate"]))
    if action == "truncate":
        return data[:at]
    if action == "duplicate":
        return data[:at] + data[at:] + data[at:]
    chunk: bytes = draw(st.binary(min_size=1, max_size=16))
    if action == "insert":
        return data[:at] + chunk + data[at:]
    return data[:at] + chunk + data[at + len(chunk) :]


def _tag_value(data: bytes, draw: Draw) -> bytes:
    lines = data.decode("utf-8", "replace").splitlines(keepends=True)
    candidates = [i for i, line in enumerate(lines) if re.search(r":\s+\S", line)]
    if not candidates:
        return data
    i = draw(st.sampled_from(candidates))
    key, _, value = lines[i].partition(": ")
    lines[i] = f"{key}: {draw(st.sampled_from(TAGS))} {value}"
    return "".join(lines).encode()


def _billion_laughs(data: bytes, draw: Draw) -> bytes:
    bomb = 'a: &a ["lol","lol"]\nb: &b [*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b]\nd: [*c,*c,*c,*c]\n'
    return data + b"---\n" + bomb.encode()


MUTATIONS: dict[str, Callable[[bytes, Draw], bytes]] = {
    "retype": lambda data, draw: _structured(data, draw, _retype),
    "rekey": lambda data, draw: _structured(data, draw, _rekey),
    "nest": lambda data, draw: _structured(data, draw, _nest),
    "expression": lambda data, draw: _structured(data, draw, _expression),
    "raw text": _raw_text,
    "raw bytes": _raw_bytes,
    "tag": _tag_value,
    "aliases": _billion_laughs,
    "empty": lambda data, draw: bytes(
        draw(st.sampled_from([b"", b"---\n", b"# only a comment\n"]))
    ),
}


@st.composite
def mutated_trees(draw: Draw) -> dict[str, bytes | None]:
    """File name -> new bytes (None: the file is removed); the rest is shipped as is."""
    changes: dict[str, bytes | None] = {}
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(FILES))
        what = draw(st.sampled_from([*MUTATIONS, "remove", "add"]))
        if what == "remove":
            changes[name] = None
        elif what == "add":
            source = (SHIPPED / draw(st.sampled_from(FILES))).read_bytes()
            changes[f"extra/new_{len(changes)}.yaml"] = MUTATIONS["raw text"](source, draw)
        else:
            current = changes.get(name) or (SHIPPED / name).read_bytes()
            changes[name] = MUTATIONS[what](current, draw)
    return changes


def _validate(changes: dict[str, bytes | None]) -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory(prefix="devskyy-fuzz-") as folder:
        root = Path(folder)
        shutil.copytree(SHIPPED, root / "manifests")
        for name, data in changes.items():
            target = root / "manifests" / name
            if data is None:
                target.unlink(missing_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        cwd = os.getcwd()
        os.chdir(root)
        try:
            result = CliRunner().invoke(main, ["validate", "manifests"])
        finally:
            os.chdir(cwd)
    return result.exit_code, result.stdout, result.stderr


OUTCOMES: dict[str, int] = {}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 500,  # CI: the same examples every run; long runs explore
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated_trees())
# Found by this fuzzer: a refused tag left a list where the kind goes, and the set check
# used it as a dict key ("internal error: TypeError: unhashable type: 'list'").
@example(
    {
        "agents/scanner.yaml": b"apiVersion: devskyy.dev/v1\n"
        b"kind: !!python/object/apply:os.system ['true'] Agent\n"
        b"metadata:\n  name: scanner\nspec:\n  module: devskyy.agents.scanner:ScannerAgent\n"
    }
)
def test_mutated_manifest_trees_exit_0_or_1_with_located_problems(
    changes: dict[str, bytes | None],
) -> None:
    code, out, err = _validate(changes)
    assert "internal error" not in err, err
    assert "Traceback" not in out + err
    if code == 0:
        OUTCOMES["valid"] = OUTCOMES.get("valid", 0) + 1
        assert VALID.match(out.strip()), out
        assert err == ""
        return
    assert code == 1, (code, out, err)
    OUTCOMES["problems"] = OUTCOMES.get("problems", 0) + 1
    assert out == ""
    *problems, summary = err.rstrip("\n").split("\n")
    assert SUMMARY.match(summary), summary
    assert problems, err
    for line in problems:
        assert PROBLEM.match(line), line
    assert int(summary.split()[1]) == len(problems)


def teardown_module() -> None:
    """With DEVSKYY_FUZZ_REPORT set, print how the examples ended (for long local runs)."""
    if os.environ.get("DEVSKYY_FUZZ_REPORT"):
        print(f"\nfuzz outcomes over {EXAMPLES} examples: {OUTCOMES}")
