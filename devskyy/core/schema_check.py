"""Checking one document against its kind: JSON Schema errors worded for people.

Pure. ``check_document`` returns the pydantic model of a document, or its problems,
each with a rank (0 for the document's most relevant error, which prints first).
``best_match`` keeps one error per location. Messages are rewritten for people:
``unknown field 'foo'``, ``missing required field 'module'``, ``'urgent' is not one of
critical, high, medium, low``, ``-1 is less than the minimum of 1``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as ModelError

from devskyy.core.yaml_strict import Document, JsonPath
from devskyy.model.manifests import KINDS, MODULE_PATTERN, NAME_PATTERN, Manifest
from devskyy.model.problems import Problem
from devskyy.model.schemas import schema_for

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

_NAME_HINT = "lowercase letters, digits, '_' and '-', starting with a letter, at most 63 long"


@functools.cache
def _validator(kind: str) -> Draft202012Validator:
    """One compiled validator per kind (schemas are static).

    jsonschema is imported here, not at the top: a clean tree never needs it (the
    pydantic gate passes every document), which saves its import on every run.
    """
    from jsonschema import Draft202012Validator  # noqa: PLC0415

    return Draft202012Validator(schema_for(kind))


def show(value: Any) -> str:
    """A short, JSON-flavoured rendering of a value for messages."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _extra_keys(error: ValidationError) -> list[str]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    known = set(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    return [
        key
        for key in error.instance
        if key not in known and not any(re.search(p, key) for p in patterns)
    ]


def _messages(error: ValidationError) -> Iterator[tuple[JsonPath, str]]:
    """(path, message) pairs for one schema error, in words a person can act on."""
    path: JsonPath = tuple(error.absolute_path)
    kind = error.validator
    value = error.validator_value
    instance = error.instance
    if kind == "additionalProperties" and isinstance(instance, dict):
        for key in _extra_keys(error):
            yield (*path, key), f"unknown field {key!r}"
        return
    if kind == "required":
        missing = [k for k in value if not isinstance(instance, dict) or k not in instance]
        for key in missing:
            yield path, f"missing required field {key!r}"
        return
    yield path, _message(error, kind, value, instance)


def _message(error: ValidationError, kind: Any, value: Any, instance: Any) -> str:
    simple = {
        "minimum": f"{show(instance)} is less than the minimum of {value}",
        "maximum": f"{show(instance)} is greater than the maximum of {value}",
        "exclusiveMinimum": f"{show(instance)} must be greater than {value}",
        "exclusiveMaximum": f"{show(instance)} must be less than {value}",
        "maxLength": f"{show(instance)} is longer than {value} characters",
        "minLength": f"must not be shorter than {value} characters",
        "const": f"expected {show(value)}, got {show(instance)}",
    }
    if kind in simple:
        return simple[kind]
    if kind == "type":
        wanted = value if isinstance(value, str) else " or ".join(value)
        hint = ""
        if wanted == "string" and isinstance(instance, bool | int | float):
            hint = "; quote it if it is meant as text"  # version: 2.0, answer: yes
        return f"{show(instance)} is not of type '{wanted}'{hint}"
    if kind == "enum":
        return f"{show(instance)} is not one of {', '.join(str(v) for v in value)}"
    if kind == "minItems":
        return "must not be empty" if value == 1 else f"needs at least {value} items"
    if kind == "pattern":
        if value == NAME_PATTERN:
            return f"{show(instance)} is not a valid name ({_NAME_HINT})"
        if value == MODULE_PATTERN:
            return f"{show(instance)} is not a module path like 'package.module:ClassName'"
        return f"{show(instance)} does not match {value!r}"
    if kind == "oneOf" and all(isinstance(s, dict) and set(s) == {"required"} for s in value):
        names = " or ".join(repr(s["required"][0]) for s in value)
        return f"exactly one of {names} is required"
    return str(error.message)


def _location_of(error: ValidationError) -> JsonPath:
    return tuple(error.absolute_path)


def _schema_problems(doc: Document, kind: str) -> list[tuple[int, Problem]]:
    """(rank, problem) for every location with errors: rank 0 is the document's best."""
    errors = list(_validator(kind).iter_errors(doc.data))
    if not errors:
        return []
    groups: dict[JsonPath, list[ValidationError]] = {}
    for error in errors:
        groups.setdefault(_location_of(error), []).append(error)
    from jsonschema.exceptions import best_match, relevance  # noqa: PLC0415 - see _validator

    overall = best_match(errors, key=relevance)
    best_location = _location_of(overall) if overall is not None else None
    out: list[tuple[int, Problem]] = []
    for location, group in groups.items():
        chosen = best_match(group, key=relevance)
        if chosen is None:  # pragma: no cover - groups are never empty
            continue
        rank = 0 if location == best_location else 1
        for path, message in _messages(chosen):
            out.append((rank, doc.problem(path, message)))
    return out


def _model_problems(doc: Document, exc: ModelError) -> list[tuple[int, Problem]]:
    """Problems from a pydantic error (schema and model disagree, rarely: a safety net)."""
    out: list[tuple[int, Problem]] = []
    for item in exc.errors():
        path: list[str | int] = []
        node = doc.data
        for part in item["loc"]:
            if part == "[key]":
                break  # the key itself is wrong: point at it
            if isinstance(node, dict) and isinstance(part, str):
                path.append(part)
                if part not in node:
                    break  # the message is about this absent field
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                path.append(part)
                node = node[part]
            # other parts are pydantic's own labels (union members, validators)
        out.append((1, doc.problem(tuple(path), str(item["msg"]))))
    return out


def check_document(doc: Document, kind: str) -> tuple[Manifest | None, list[tuple[int, Problem]]]:
    """The model of a document, or its problems.

    pydantic in strict JSON mode is the fast gate (about ten times faster than
    jsonschema, and never more lenient than the schema: no coercion of ``"5"`` to 5).
    Only a document it refuses is run through jsonschema, whose errors locate and word
    the problems; if jsonschema finds none (the schema is a little more lenient, e.g.
    ``1.0`` for an integer), the lax model decides and its errors are reported.
    """
    model = KINDS[kind]
    try:
        return model.model_validate_json(json.dumps(doc.data), strict=True), []
    except (ModelError, ValueError):
        pass
    problems = _schema_problems(doc, kind)
    if problems:
        return None, problems
    try:
        return model.model_validate(doc.data), []
    except ModelError as exc:
        return None, _model_problems(doc, exc)
