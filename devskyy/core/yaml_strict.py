"""Strict, safe YAML loading: bytes in, JSON-like documents and their locations out.

Pure: no files are read here; the caller passes the bytes and the name to print.
The C event parser of PyYAML (``CSafeLoader``, pure-Python ``SafeLoader`` if libyaml is
absent) produces events, and this module builds the data itself, so that it can refuse
what ``yaml.safe_load`` silently accepts:

- bytes that are not UTF-8 (UTF-16 and Latin-1 files included);
- duplicate keys (``safe_load`` keeps the last one without a word);
- anchors and aliases (billion-laughs and action-at-a-distance);
- explicit tags of any kind (``!!str``, ``!!python/object``, ``!custom``);
- mapping keys that are not strings (``on:`` reads as a boolean in YAML 1.1);
- merge keys (``<<``) and nesting deeper than ``max_depth`` collections.

Plain scalars are resolved like ``safe_load`` does (``3`` is an int, ``true`` a bool),
except timestamps, which stay strings so that every value is JSON. Each document comes
back with ``locations``: JSON path (a tuple) -> ``Location`` of its key and its value,
1-based, so that later errors can point at the offending key or value.

The builder is iterative (no recursion), so hostile nesting cannot exhaust the stack.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from devskyy.model.problems import FILE, PathPart, Problem, format_path

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - libyaml is present in every supported wheel
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_DEPTH = 32
"""Default limit on nested collections (the document's root mapping is level 1)."""

JsonPath = tuple[PathPart, ...]

_YAML_TAG = "tag:yaml.org,2002:"
_CONSTRUCTOR = SafeConstructor()
_NO_KEY: Any = object()
_BAD_KEY: Any = object()


Location = tuple[int, int, int, int]
"""Where a key (or list item) and its value start, 1-based:
``(line, column, value_line, value_column)``. Plain tuples: there is one per node."""


@dataclass
class Document:
    """One YAML document of a file: its data, whether it loaded cleanly, and locations."""

    file: str
    index: int
    line: int
    data: Any = None
    ok: bool = True
    locations: dict[JsonPath, Location] = field(default_factory=dict)

    def locate(self, path: JsonPath, *, value: bool = False) -> tuple[int, int]:
        """(line, column) of ``path``, or of its nearest ancestor that exists."""
        probe = tuple(path)
        while probe not in self.locations and probe:
            probe = probe[:-1]
        loc = self.locations.get(probe)
        if loc is None:
            return (self.line, 1)
        return (loc[2], loc[3]) if value else (loc[0], loc[1])

    def problem(self, path: JsonPath, message: str, *, value: bool = False) -> Problem:
        """A ``Problem`` located at ``path`` in this document."""
        line, column = self.locate(path, value=value)
        return Problem(self.file, line, column, format_path(path), message)


@dataclass
class LoadResult:
    """Every document of one file, and every problem found while loading it."""

    documents: list[Document]
    problems: list[Problem]


class _Frame:
    __slots__ = ("container", "is_map", "key", "key_column", "key_line", "path")

    def __init__(self, container: Any, path: JsonPath, is_map: bool) -> None:
        self.container = container
        self.path = path
        self.is_map = is_map
        self.key: Any = _NO_KEY
        self.key_line = 0
        self.key_column = 0


def _tag_text(tag: str) -> str:
    return "!!" + tag[len(_YAML_TAG) :] if tag.startswith(_YAML_TAG) else tag


_TYPE_WORDS = {bool: "a boolean", int: "an integer", float: "a number", type(None): "null"}


@functools.lru_cache(maxsize=8192)
def _plain(value: str) -> tuple[str, Any]:
    """Resolve a plain (unquoted, untagged) scalar: (kind, value) as ``safe_load`` would."""
    resolvers = Resolver.yaml_implicit_resolvers.get(value[:1], [])
    for tag, regexp in [*resolvers, *Resolver.yaml_implicit_resolvers.get(None, [])]:
        if not regexp.match(value):
            continue
        kind = tag[len(_YAML_TAG) :]
        node = ScalarNode(tag, value)
        if kind == "null":
            return kind, None
        if kind == "bool":
            return kind, _CONSTRUCTOR.construct_yaml_bool(node)
        if kind == "int":
            return kind, _CONSTRUCTOR.construct_yaml_int(node)
        if kind == "float":
            return kind, _CONSTRUCTOR.construct_yaml_float(node)
        return kind, value  # timestamp, merge, value: kept as text
    return "str", value


class _Builder:
    """Turns a parser's events into documents, recording problems as it goes."""

    def __init__(self, file: str, max_depth: int) -> None:
        self.file = file
        self.max_depth = max_depth
        self.documents: list[Document] = []
        self.problems: list[Problem] = []
        self.doc: Document | None = None
        self.stack: list[_Frame] = []
        self.ignoring = 0

    # -- helpers ---------------------------------------------------------------

    def report(self, line: int, column: int, path: JsonPath, message: str) -> None:
        self.problems.append(Problem(self.file, line, column, format_path(path), message))
        if self.doc is not None:
            self.doc.ok = False

    def current_path(self) -> JsonPath:
        """The path being built, for syntax errors raised mid-document."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if top.is_map:
            if top.key is _NO_KEY or top.key is _BAD_KEY:
                return top.path
            return (*top.path, top.key)
        return (*top.path, len(top.container))

    def _check_node(self, event: Any, path: JsonPath) -> None:
        mark = event.start_mark
        if event.anchor is not None:
            self.report(
                mark.line + 1,
                mark.column + 1,
                path,
                f"anchors and aliases are not allowed (found anchor '&{event.anchor}')",
            )
        tag = getattr(event, "tag", None)
        if tag is not None:
            self.report(
                mark.line + 1,
                mark.column + 1,
                path,
                f"explicit tags are not allowed (found '{_tag_text(tag)}')",
            )

    def _slot(self) -> tuple[_Frame | None, bool]:
        """The frame receiving the next node, and whether that node is a mapping key."""
        if not self.stack:
            return None, False
        top = self.stack[-1]
        return top, top.is_map and top.key is _NO_KEY

    def _attach(self, frame: _Frame | None, value: Any, line: int, column: int) -> JsonPath:
        """Store a value in its parent (or as the root); returns the value's path."""
        doc = self.doc
        assert doc is not None
        if frame is None:
            doc.data = value
            doc.locations[()] = (line, column, line, column)
            return ()
        if frame.is_map:
            key = frame.key
            frame.key = _NO_KEY
            if key is _BAD_KEY:
                return (*frame.path, "?")
            path = (*frame.path, key)
            frame.container[key] = value
            doc.locations[path] = (frame.key_line, frame.key_column, line, column)
            return path
        path = (*frame.path, len(frame.container))
        frame.container.append(value)
        doc.locations[path] = (line, column, line, column)
        return path

    def _key(self, frame: _Frame, event: Any) -> None:
        mark = event.start_mark
        line, column = mark.line + 1, mark.column + 1
        frame.key_line, frame.key_column = line, column
        if isinstance(event, AliasEvent):
            frame.key = _BAD_KEY
            self.report(
                line,
                column,
                frame.path,
                f"anchors and aliases are not allowed (found alias '*{event.anchor}')",
            )
            return
        key: Any = event.value
        kind = "str"
        if event.implicit[0]:
            kind, key = _plain(event.value)
        path = (*frame.path, event.value)
        self._check_node(event, path)
        if kind == "merge":
            frame.key = _BAD_KEY
            self.report(line, column, frame.path, "merge keys ('<<') are not allowed")
        elif not isinstance(key, str):
            frame.key = _BAD_KEY
            what = _TYPE_WORDS.get(type(key), type(key).__name__)
            self.report(
                line,
                column,
                frame.path,
                f"key {event.value!r} is read as {what}; keys must be strings (quote it)",
            )
        elif key in frame.container:
            frame.key = _BAD_KEY
            first = self.doc.locations.get((*frame.path, key)) if self.doc else None
            where = f" (first defined at line {first[0]}, column {first[1]})" if first else ""
            self.report(line, column, (*frame.path, key), f"duplicate key {key!r}{where}")
        else:
            frame.key = key

    # -- events ----------------------------------------------------------------

    def feed(self, event: Any) -> None:
        cls = type(event)
        if self.ignoring:
            if cls is MappingStartEvent or cls is SequenceStartEvent:
                self.ignoring += 1
            elif cls is MappingEndEvent or cls is SequenceEndEvent:
                self.ignoring -= 1
            return
        if cls is ScalarEvent:
            self.scalar(event)
        elif cls is MappingStartEvent or cls is SequenceStartEvent:
            self.start(event, cls is MappingStartEvent)
        elif cls is MappingEndEvent or cls is SequenceEndEvent:
            self.stack.pop()
        elif cls is AliasEvent:
            self.alias(event)
        elif cls is DocumentStartEvent:
            self.doc = Document(self.file, len(self.documents), event.start_mark.line + 1)
            self.stack = []
        elif cls is DocumentEndEvent:
            self.finish()

    def finish(self) -> None:
        """Close the current document (also after a syntax error cut it short)."""
        if self.doc is not None:
            self.documents.append(self.doc)
        self.doc = None
        self.stack = []
        self.ignoring = 0

    def scalar(self, event: Any) -> None:
        frame, is_key = self._slot()
        if is_key:
            assert frame is not None
            self._key(frame, event)
            return
        value = event.value
        if event.implicit[0]:
            value = _plain(value)[1]
        mark = event.start_mark
        path = self._attach(frame, value, mark.line + 1, mark.column + 1)
        if event.anchor is not None or event.tag is not None:
            self._check_node(event, path)

    def alias(self, event: Any) -> None:
        frame, is_key = self._slot()
        if is_key:
            assert frame is not None
            self._key(frame, event)
            return
        mark = event.start_mark
        path = self._attach(frame, None, mark.line + 1, mark.column + 1)
        self.report(
            mark.line + 1,
            mark.column + 1,
            path,
            f"anchors and aliases are not allowed (found alias '*{event.anchor}')",
        )

    def start(self, event: Any, is_map: bool) -> None:
        frame, is_key = self._slot()
        mark = event.start_mark
        line, column = mark.line + 1, mark.column + 1
        if is_key:
            assert frame is not None
            frame.key = _BAD_KEY
            frame.key_line, frame.key_column = line, column
            self.report(line, column, frame.path, "keys must be strings, not collections")
            self.ignoring = 1
            return
        if len(self.stack) >= self.max_depth:
            path = self._attach(frame, None, line, column)
            self.report(
                line, column, path, f"nesting deeper than {self.max_depth} levels is not allowed"
            )
            self.ignoring = 1
            return
        container: Any = {} if is_map else []
        path = self._attach(frame, container, line, column)
        if event.anchor is not None or event.tag is not None:
            self._check_node(event, path)
        self.stack.append(_Frame(container, path, is_map))


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based (line, column in characters) of a byte offset into mostly-UTF-8 bytes."""
    offset = max(0, min(offset, len(data)))
    start = data.rfind(b"\n", 0, offset) + 1
    line = data.count(b"\n", 0, offset) + 1
    column = len(data[start:offset].decode("utf-8", errors="replace")) + 1
    return line, column


_READER_POSITION = re.compile(r"position (\d+)")


def load_documents(data: bytes, file: str, *, max_depth: int = MAX_DEPTH) -> LoadResult:
    """Load every document of one file strictly; see the module docstring for the rules."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(data, exc.start)
        bad = data[exc.start]
        return LoadResult(
            [], [Problem(file, line, column, FILE, f"not valid UTF-8 (byte 0x{bad:02x})")]
        )
    builder = _Builder(file, max_depth)
    loader = _Loader(data)
    try:
        while loader.check_event():
            builder.feed(loader.get_event())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        builder.report(line, column, builder.current_path(), _syntax_message(exc))
        builder.finish()
    except yaml.YAMLError as exc:
        # The reader reports a byte offset (control characters, bad encodings).
        position = getattr(exc, "position", None)
        if position is None:
            found = _READER_POSITION.search(str(exc))
            position = int(found.group(1)) if found else 0
        line, column = _byte_position(data, position)
        reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        character = getattr(exc, "character", None)
        if isinstance(character, int):
            reason = f"character #x{character:04x}: {reason}"
        builder.report(line, column, builder.current_path(), f"invalid YAML: {reason}")
        builder.finish()
    finally:
        loader.dispose()
    return LoadResult(builder.documents, builder.problems)


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    problem = (exc.problem or "syntax error").strip()
    if exc.context:
        return f"invalid YAML: {exc.context.strip()}: {problem}"
    return f"invalid YAML: {problem}"
