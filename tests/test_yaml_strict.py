"""The strict YAML loader: what it builds, what it refuses, and where it says so."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from devskyy.core.yaml_strict import MAX_DEPTH, LoadResult, load_documents
from devskyy.model.problems import Problem, format_path


def load(text: str | bytes, **kwargs: Any) -> LoadResult:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return load_documents(data, "m/x.yaml", **kwargs)


def lines(result: LoadResult) -> list[str]:
    return [str(p) for p in result.problems]


# -- what it builds ---------------------------------------------------------------------


def test_builds_json_like_data_with_safe_load_scalars() -> None:
    result = load(
        "a: 1\n"
        "b: [x, 'y', 2.5, true, null, ~, 0x10, 1_000]\n"
        "c:\n"
        "  d: e\n"
        "when: 2024-01-01\n"
        'quoted: "3"\n'
        "block: |\n"
        "  two\n"
        "  lines\n"
    )
    assert result.problems == []
    [doc] = result.documents
    assert doc.ok
    assert doc.data == {
        "a": 1,
        "b": ["x", "y", 2.5, True, None, None, 16, 1000],
        "c": {"d": "e"},
        "when": "2024-01-01",  # timestamps stay text: every value is JSON
        "quoted": "3",
        "block": "two\nlines\n",
    }


def test_locations_of_keys_and_values_are_one_based() -> None:
    doc = load("x: 1\ny:\n  - a\n  - b: 2\n").documents[0]
    assert doc.locations[()] == (1, 1, 1, 1)
    assert doc.locations[("x",)] == (1, 1, 1, 4)
    assert doc.locations[("y",)] == (2, 1, 3, 3)
    assert doc.locations[("y", 0)] == (3, 5, 3, 5)
    assert doc.locations[("y", 1, "b")] == (4, 5, 4, 8)
    assert doc.locate(("y", 1, "b")) == (4, 5)
    assert doc.locate(("y", 1, "b"), value=True) == (4, 8)
    # A path that does not exist falls back to its nearest ancestor.
    assert doc.locate(("y", 1, "missing", 3)) == (4, 5)
    assert str(doc.problem(("y", 1, "b"), "boom")) == "m/x.yaml:4:5: y[1].b: boom"


def test_columns_count_characters_not_bytes() -> None:
    doc = load("é: {ü: 1}\n").documents[0]
    assert doc.locations[("é", "ü")] == (1, 5, 1, 8)


def test_multiple_documents_with_their_start_lines() -> None:
    result = load("a: 1\n---\n# only a comment\n---\nb: 2\n...\n")
    assert [(d.index, d.line, d.data) for d in result.documents] == [
        (0, 1, {"a": 1}),
        (1, 2, None),
        (2, 4, {"b": 2}),
    ]


def test_an_empty_file_has_no_documents() -> None:
    assert load(b"").documents == []
    assert load("# nothing\n").documents == []


def test_utf8_byte_order_mark_is_accepted() -> None:
    result = load(b"\xef\xbb\xbfa: 1\n")
    assert result.problems == []
    assert result.documents[0].data == {"a": 1}


# -- what it refuses --------------------------------------------------------------------


def test_duplicate_keys_are_refused_with_the_first_location() -> None:
    result = load("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    assert lines(result) == [
        "m/x.yaml:4:3: b.c: duplicate key 'c' (first defined at line 3, column 3)",
        "m/x.yaml:5:1: a: duplicate key 'a' (first defined at line 1, column 1)",
    ]
    assert not result.documents[0].ok


def test_anchors_and_aliases_are_refused() -> None:
    result = load("base: &b {x: 1}\ncopy: *b\nlist: [*b]\n")
    assert lines(result) == [
        "m/x.yaml:1:7: base: anchors and aliases are not allowed (found anchor '&b')",
        "m/x.yaml:2:7: copy: anchors and aliases are not allowed (found alias '*b')",
        "m/x.yaml:3:8: list[0]: anchors and aliases are not allowed (found alias '*b')",
    ]


def test_alias_used_as_a_key_is_refused() -> None:
    result = load("a: &k key\n*k : 2\n")
    assert lines(result) == [
        "m/x.yaml:1:4: a: anchors and aliases are not allowed (found anchor '&k')",
        "m/x.yaml:2:1: <document>: anchors and aliases are not allowed (found alias '*k')",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: !!str 5\n", "m/x.yaml:1:4: a: explicit tags are not allowed (found '!!str')"),
        (
            "a: !!python/object:os.system {}\n",
            "m/x.yaml:1:4: a: explicit tags are not allowed (found '!!python/object:os.system')",
        ),
        ("a: !custom x\n", "m/x.yaml:1:4: a: explicit tags are not allowed (found '!custom')"),
        ("a: !!map {b: 1}\n", "m/x.yaml:1:4: a: explicit tags are not allowed (found '!!map')"),
        ("!!str k: 1\n", "m/x.yaml:1:1: k: explicit tags are not allowed (found '!!str')"),
        ("a: ! x\n", "m/x.yaml:1:4: a: explicit tags are not allowed (found '!')"),
    ],
)
def test_explicit_tags_are_refused(text: str, expected: str) -> None:
    assert lines(load(text)) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "on: push\n",
            "m/x.yaml:1:1: <document>: key 'on' is read as a boolean; keys must be strings "
            "(quote it)",
        ),
        (
            "spec:\n  1: x\n",
            "m/x.yaml:2:3: spec: key '1' is read as an integer; keys must be strings (quote it)",
        ),
        (
            "~: x\n",
            "m/x.yaml:1:1: <document>: key '~' is read as null; keys must be strings (quote it)",
        ),
        ("? [a, b]\n: 1\n", "m/x.yaml:1:3: <document>: keys must be strings, not collections"),
        ("<<: {a: 1}\n", "m/x.yaml:1:1: <document>: merge keys ('<<') are not allowed"),
    ],
)
def test_keys_must_be_plain_strings(text: str, expected: str) -> None:
    assert lines(load(text)) == [expected]


def test_quoted_keys_that_look_like_other_types_are_fine() -> None:
    result = load("'on': push\n'1': x\n")
    assert result.problems == []
    assert result.documents[0].data == {"on": "push", "1": "x"}


def test_nesting_deeper_than_the_limit_is_refused_once_and_the_rest_still_loads() -> None:
    result = load("a:\n  b:\n    c:\n      d: 1\n    e: [[1]]\nz: 2\n", max_depth=3)
    assert lines(result) == [
        "m/x.yaml:4:7: a.b.c: nesting deeper than 3 levels is not allowed",
        "m/x.yaml:5:8: a.b.e: nesting deeper than 3 levels is not allowed",
    ]
    assert result.documents[0].data == {"a": {"b": {"c": None, "e": None}}, "z": 2}


def test_default_nesting_limit() -> None:
    deep = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    [problem] = load(deep).problems
    assert problem.message == f"nesting deeper than {MAX_DEPTH} levels is not allowed"
    assert (problem.line, problem.column) == (1, 4 + MAX_DEPTH - 1)


def test_hostile_nesting_is_an_error_not_a_crash() -> None:
    [problem] = load("a: " + "[" * 20000).problems
    assert problem.message.startswith("invalid YAML:")
    assert "nesting depth" in problem.message


@pytest.mark.parametrize(
    "deep",
    [
        "- " * 10_000 + "x\n",  # block sequences on one line
        "".join(" " * i + "a:\n" for i in range(2_000)) + " " * 2_000 + "b: 1\n",
        "a: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n",
        "a: " + "[" * 10_000 + "1" + "]" * 10_000 + "\n",
    ],
    ids=["block sequence", "block mapping", "flow mapping", "flow sequence"],
)
def test_every_nesting_shape_stops_at_the_limit_with_a_located_problem(deep: str) -> None:
    problems = load(deep).problems
    assert problems, "deep nesting must be refused"
    first = problems[0]
    # Ours (MAX_DEPTH), or libyaml's own cap of 1,000 when its scanner sees it first.
    assert first.message in (
        f"nesting deeper than {MAX_DEPTH} levels is not allowed",
        "invalid YAML: while increasing flow level: exceeded maximum nesting depth",
    )
    assert first.file == "m/x.yaml"
    assert first.line >= 1
    assert first.column >= 1


def test_non_utf8_bytes_are_refused_at_their_position() -> None:
    result = load(b"a: 1\nname: caf\xe9\n")
    assert lines(result) == ["m/x.yaml:2:10: <file>: not valid UTF-8 (byte 0xe9)"]
    assert result.documents == []


def test_utf16_is_refused() -> None:
    data = "a: 1\n".encode("utf-16")
    assert lines(load(data)) == ["m/x.yaml:1:1: <file>: not valid UTF-8 (byte 0xff)"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: b: c\n",
            "m/x.yaml:1:5: <document>: invalid YAML: mapping values are not allowed in this "
            "context",
        ),
        (
            "a: [1, 2\n",
            "m/x.yaml:2:1: a[2]: invalid YAML: while parsing a flow sequence: did not find "
            "expected ',' or ']'",
        ),
        (
            "a:\n  - x\n  - y: \x07\n",
            "m/x.yaml:3:8: <document>: invalid YAML: character #x0007: control characters are "
            "not allowed",
        ),
        (
            "a: 'open\n",
            "m/x.yaml:2:1: a: invalid YAML: while scanning a quoted scalar: found unexpected "
            "end of stream",
        ),
    ],
)
def test_syntax_errors_are_located(text: str, expected: str) -> None:
    assert lines(load(text)) == [expected]


def test_documents_before_a_syntax_error_are_kept() -> None:
    result = load("a: 1\n---\nb: [\n")
    assert [(d.index, d.ok, d.data) for d in result.documents] == [
        (0, True, {"a": 1}),
        (1, False, {"b": []}),
    ]
    assert len(result.problems) == 1


# -- properties -------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=5))
def test_round_trips_what_safe_dump_writes(value: dict[str, Any]) -> None:
    text = yaml.safe_dump(value, allow_unicode=True)
    result = load(text)
    assert result.problems == []
    expected = yaml.safe_load(text)  # the same YAML 1.1 reading as safe_load...
    assert result.documents[0].data == _untime(expected)  # ...with timestamps as text


def _untime(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untime(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untime(v) for v in value]
    if isinstance(value, dt.date):
        return str(value)
    return value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_result_never_an_exception(data: bytes) -> None:
    result = load_documents(data, "f.yaml")
    for problem in result.problems:
        assert problem.line >= 1
        assert problem.column >= 1
        assert "\n" not in str(problem)


# -- the Problem value ------------------------------------------------------------------


def test_problem_text_and_order() -> None:
    a = Problem("b.yaml", 2, 1, "spec", "x")
    b = Problem("a.yaml", 10, 1, "spec", "y")
    c = Problem("a.yaml", 9, 7, "spec", "z")
    assert str(a) == "b.yaml:2:1: spec: x"
    assert sorted([a, b, c]) == [c, b, a]
    assert a.to_dict() == {"file": "b.yaml", "line": 2, "column": 1, "path": "spec", "message": "x"}


def test_format_path() -> None:
    assert format_path(()) == "<document>"
    assert format_path(("spec", "retry", "maxAttempts")) == "spec.retry.maxAttempts"
    assert format_path(("spec", "steps", 2, "needs", 0)) == "spec.steps[2].needs[0]"
    assert format_path(("metadata", "labels", "app.kubernetes.io/name")) == (
        'metadata.labels["app.kubernetes.io/name"]'
    )
    assert format_path(("a b", 'q"')) == '["a b"]["q\\""]'
