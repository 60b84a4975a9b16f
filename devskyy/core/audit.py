"""The audit log's hash chain: chaining new events and verifying a stored log (pure).

Each stored event carries ``prev_hash`` (the hash of the event before it; 64 zeros for
the first) and ``hash`` = SHA-256 of ``prev_hash`` and the event's canonical JSON
(time, actor, type, resource, outcome, details). Sequence numbers count from 1 and the
store keeps a head (count and last hash), so verification tells apart:

- an *altered* event: its own hash no longer matches its content;
- a *deleted* event: a gap in the numbers, or a log shorter than its head;
- a *reordered* event (or one renumbered after a deletion): its ``prev_hash`` is not
  the hash of the event now before it.

Whoever can rewrite every later row and the head, or delete the newest rows with the
head, can forge a consistent chain. Checkpoints close that gap, as CloudTrail's digest
files do: ``{seq, hash, at}`` of the head, kept outside the database (``devskyy audit
checkpoint``, and logged by ``serve``/``watch`` every few minutes); ``check_checkpoint``
says when the stored chain no longer holds that event, naming the missing range.
``missing_revisions`` finds applied revisions that have no ``manifests.applied`` event
(an apply and its event are written together, so a gap means tampering).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devskyy.core.keys import PREFIX, redact_text
from devskyy.core.timefmt import rfc3339
from devskyy.model.jsontext import json_encoder
from devskyy.model.security import AuditEvent, AuditRecord

GENESIS = "0" * 64


_SECONDS: dict[int, str] = {}


def iso(ts: float) -> str:
    """UTC ISO-8601 time with microseconds, as stored in the chain.

    The text of ``datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")``,
    computed with the same rounding (half to even, on the microseconds) but with the
    date and time of each whole second cached: the audit log formats one per event.
    """
    fraction, whole = math.modf(ts)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        micros -= 1_000_000
        whole += 1.0
    elif micros < 0:
        micros += 1_000_000
        whole -= 1.0
    second = int(whole)
    prefix = _SECONDS.get(second)
    if prefix is None:
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        prefix = _SECONDS[second] = datetime.fromtimestamp(second, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S"
        )
    return f"{prefix}.{micros:06d}+00:00"


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
_text = json.encoder.encode_basestring_ascii
# ``_ENCODER.encode`` for the details of an event (plain JSON, never circular).
_encode_details = json_encoder(sort_keys=True, separators=(",", ":"))


def _event_payload(  # noqa: PLR0917 - the six fields of the canonical body
    time: float, actor: str, event_type: str, resource: str, outcome: str, details: Any
) -> str:
    """The canonical JSON of an event: sorted keys, no spaces, ASCII only.

    The same text as ``json.dumps({"time": iso(time), "actor": ..., "details": ...},
    sort_keys=True, separators=(",", ":"), ensure_ascii=True)``, assembled directly
    since the six keys are known and already in order.
    """
    return (
        f'{{"actor":{_text(actor)},"details":{_encode_details(details)},'
        f'"event_type":{_text(event_type)},"outcome":{_text(outcome)},'
        f'"resource":{_text(resource)},"time":"{iso(time)}"}}'
    )


def _key_text(key: Any) -> str:
    """The text a mapping key is stored as: JSON's own for ``None``, booleans and numbers
    (``1`` -> ``"1"``, ``None`` -> ``"null"``), ``str()`` for any other object."""
    if key is None or isinstance(key, bool | int | float):
        return _ENCODER.encode(key)
    return str(key)


def _json(value: Any, scrub: bool) -> Any:
    """``value`` as the JSON value that is hashed and stored (``value`` itself if it is one).

    The chain hashes the details before the store writes them as JSON and verification
    hashes what it reads back, so only a value that survives that round trip verifies:
    mapping keys become text (a mix of ``int`` and ``str`` keys could not even be sorted,
    and ``{9: .., 10: ..}`` sorts differently once read back as ``{"10": .., "9": ..}``),
    tuples become lists, and other objects their ``str()``. With ``scrub`` every API key
    in a string, mapping key included, is replaced by ``[redacted]``. Two keys that end
    up as the same text both stay: the later one gets ``#2`` (``#3``, ...) appended, so
    no detail is lost.
    """
    if isinstance(value, str):
        return redact_text(value) if scrub else value
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        same = True
        kept: dict[str, Any] = {}
        renamed: list[tuple[str, Any]] = []
        for key, item in value.items():
            text = key if isinstance(key, str) else _key_text(key)
            if scrub:
                text = redact_text(text)
            new = _json(item, scrub)
            if text is key:
                kept[text] = new
            else:
                renamed.append((text, new))
            same = same and new is item
        if same and not renamed:
            return value
        # Keys kept as they are take their name first; a renamed one that collides
        # with a name already taken is numbered.
        for text, new in renamed:
            name, n = text, 2
            while name in kept:
                name, n = f"{text}#{n}", n + 1
            kept[name] = new
        return kept
    if isinstance(value, list | tuple):
        items = [_json(item, scrub) for item in value]
        if isinstance(value, list) and all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items
    text = str(value)
    return redact_text(text) if scrub else text


_SCALARS = frozenset({str, int, float, bool, type(None)})


def json_details(value: Any) -> Any:
    """``value`` as a JSON value with text keys, as the chain hashes and stores it."""
    if type(value) is dict:
        # The common case, checked first for speed: a flat mapping of text to scalars.
        for key, item in value.items():
            if type(key) is not str or type(item) not in _SCALARS:
                break
        else:
            return value
    return _json(value, False)


def scrub(value: Any) -> Any:
    """``json_details(value)`` with every API key (in values and keys) ``[redacted]``."""
    return _json(value, True)


def record_hash(prev_hash: str, record: AuditRecord) -> str:
    """The hash a stored record ought to carry (its ``seq`` is not covered: links are).

    SHA-256 of the previous hash, a newline, and the canonical JSON of the event's time
    (UTC ISO-8601), actor, type, resource, outcome and details (sorted keys, no spaces).
    """
    payload = _event_payload(
        record.time,
        record.actor,
        record.event_type,
        record.resource,
        record.outcome,
        record.details,
    )
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


def chain(events: Iterable[AuditEvent], last_seq: int, last_hash: str) -> list[AuditRecord]:
    """Number and hash ``events`` to follow the event ``last_seq`` with ``last_hash``.

    Details are chained as the JSON the store keeps (``json_details``: text keys), so
    the chain still verifies once read back. Defence in depth: an event whose text
    holds something shaped like an API key (in a mapping key too) is stored with that
    key replaced by ``[redacted]``.
    """
    out: list[AuditRecord] = []
    prev = last_hash
    for seq, event in enumerate(events, start=last_seq + 1):
        kind, outcome = event.event_type.value, event.outcome.value
        actor, resource, details = event.actor, event.resource, json_details(event.details)
        payload = _event_payload(event.time, actor, kind, resource, outcome, details)
        if PREFIX + "_" in payload:
            actor, resource, details = scrub(actor), scrub(resource), scrub(details)
            payload = _event_payload(event.time, actor, kind, resource, outcome, details)
        digest = hashlib.sha256(f"{prev}\n{payload}".encode()).hexdigest()
        out.append(
            AuditRecord(seq, event.time, actor, kind, resource, outcome, details, prev, digest)
        )
        prev = digest
    return out


@dataclass(frozen=True)
class Checkpoint:
    """The head of the chain at a moment: event ``seq`` had ``hash`` (``at``: ISO time)."""

    seq: int
    hash: str
    at: str

    def to_dict(self) -> dict[str, Any]:
        """``{"seq", "hash", "at"}``, the one JSON line ``audit checkpoint`` prints.

        ``at`` is written as every time in the CLI's JSON (RFC 3339, UTC, ``Z``); only
        ``seq`` and ``hash`` are checked later, so the stored text's form does not matter.
        """
        try:
            at = rfc3339(self.at) or self.at
        except ValueError:
            at = self.at  # a hand-written checkpoint read back: shown as given
        return {"seq": self.seq, "hash": self.hash, "at": at}


_MARK = "audit checkpoint "
_DECODER = json.JSONDecoder()


def _checkpoint_of(data: Any) -> Checkpoint | None:
    if not isinstance(data, dict) or "seq" not in data or "hash" not in data:
        return None
    seq, digest, at = data["seq"], data["hash"], data.get("at", "?")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValueError("seq must be a whole number >= 0")
    if not isinstance(digest, str) or len(digest) != 64:
        raise ValueError("hash must be 64 hex characters")
    return Checkpoint(seq, digest, str(at))


def parse_checkpoints(text: str, source: str) -> tuple[Checkpoint, ...]:
    """The checkpoints in ``text``: JSON lines as ``audit checkpoint`` prints them, or a
    log of ``serve``/``watch`` (JSON lines with ``seq``/``hash`` fields, or text lines
    ending in ``audit checkpoint {...}``); other log lines are skipped.

    Raises ``ValueError`` naming ``source:line`` for a malformed checkpoint, or when the
    text holds none at all.
    """
    found: list[Checkpoint] = []
    for number, line in enumerate(text.splitlines(), start=1):
        body = line.strip()
        if _MARK in body and not body.startswith("{"):
            body = body[body.index(_MARK) + len(_MARK) :]
        if not body.startswith("{"):
            continue
        try:
            # raw_decode: a text log line goes on after the object (key=value fields).
            checkpoint = _checkpoint_of(_DECODER.raw_decode(body)[0])
        except (ValueError, RecursionError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise ValueError(f"{source}:{number}: not a checkpoint: {detail}") from None
        if checkpoint is not None:
            found.append(checkpoint)
    if not found:
        raise ValueError(
            f"{source}: no checkpoint found (expected lines like "
            '{"seq": 12, "hash": "…", "at": "…"} from `devskyy audit checkpoint`)'
        )
    return tuple(found)


def check_checkpoint(records: Sequence[AuditRecord], checkpoint: Checkpoint) -> str | None:
    """Why the (already verified, contiguous) chain contradicts ``checkpoint``, or None."""
    if checkpoint.seq <= 0:
        return None
    count = len(records)
    if count < checkpoint.seq:
        missing = (
            f"event {checkpoint.seq} is"
            if count + 1 == checkpoint.seq
            else f"events {count + 1}-{checkpoint.seq} are"
        )
        return (
            f"{missing} missing: the checkpoint of {checkpoint.at} recorded event "
            f"{checkpoint.seq} (hash {checkpoint.hash[:16]}), the log ends at event {count}"
        )
    if records[checkpoint.seq - 1].hash != checkpoint.hash:
        return (
            f"event {checkpoint.seq} does not match the checkpoint of {checkpoint.at}: "
            f"events 1-{checkpoint.seq} were rewritten"
        )
    return None


def audited_revisions(records: Iterable[AuditRecord]) -> set[int]:
    """The revision numbers that ``manifests.applied`` events name."""
    audited: set[int] = set()
    for record in records:
        if record.event_type != "manifests.applied" or not isinstance(record.details, dict):
            continue
        value = record.details.get("revision")
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            audited.add(int(value))
    return audited


def missing_revisions(records: Iterable[AuditRecord], revisions: Iterable[int]) -> list[int]:
    """Revision numbers with no ``manifests.applied`` event naming them."""
    audited = audited_revisions(records)
    return [n for n in revisions if n not in audited]


def _ranges(numbers: Sequence[int]) -> str:
    """``1-3, 7`` for ``[1, 2, 3, 7]``."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)


def revisions_problem(missing: Sequence[int], total: int, events: int) -> str | None:
    """The verify failure for revisions without their event (None when all have one)."""
    if not missing:
        return None
    if events == 0:
        return f"the audit log is empty but the store has {total} revision(s)"
    return f"revision(s) {_ranges(missing)} have no manifests.applied event in the audit log"


@dataclass(frozen=True)
class ChainReport:
    """Result of verifying the log: ``first_bad`` names the first broken event."""

    ok: bool
    checked: int
    head_hash: str
    first_bad: int | None = None
    problem: str = ""


def _label(record: AuditRecord) -> str:
    return f"event {record.seq} ({record.event_type} by {record.actor} at {iso(record.time)})"


def verify(
    records: Iterable[AuditRecord],
    head: tuple[int, str] | None,
    after: tuple[int, str] = (0, GENESIS),
) -> ChainReport:
    """Walk the log in sequence order and report the first event that breaks it.

    A log with events but no head row was cut behind the writer's back (the head is
    written in the same transaction as every append). ``after`` = (seq, hash) resumes
    a walk that already verified events 1..seq, ending with ``hash``: ``records`` are
    then the events after it, and the report is the one the whole walk would give.
    """
    expected = after[0] + 1
    prev = after[1]
    for record in records:
        if record.seq > expected:
            return ChainReport(False, expected - 1, prev, expected, f"event {expected} was deleted")
        if record.seq < expected:
            return ChainReport(
                False, expected - 1, prev, record.seq, f"{_label(record)} appears twice"
            )
        if record_hash(record.prev_hash, record) != record.hash:
            return ChainReport(
                False, expected - 1, prev, record.seq, f"{_label(record)} was altered"
            )
        if record.prev_hash != prev:
            return ChainReport(
                False,
                expected - 1,
                prev,
                record.seq,
                f"{_label(record)} does not follow event {record.seq - 1}: "
                "events were reordered, or one before it was deleted",
            )
        prev = record.hash
        expected += 1
    count = expected - 1
    if head is None and count:
        return ChainReport(
            False, count, prev, count, "the audit head row is missing (deleted behind its back)"
        )
    if head is not None:
        head_count, head_hash = head
        if head_count > count:
            return ChainReport(
                False, count, prev, count + 1, f"event {count + 1} was deleted (end of the log)"
            )
        if head_count < count:
            return ChainReport(
                False,
                count,
                prev,
                head_count + 1,
                f"event {head_count + 1} is not in the recorded head (appended behind its back)",
            )
        if head_hash != prev:
            return ChainReport(
                False, count, prev, count, f"event {count} does not match the recorded head"
            )
    return ChainReport(True, count, prev)
