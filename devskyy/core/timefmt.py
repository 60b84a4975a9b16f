"""One way to write a point in time in machine output: RFC 3339, UTC, ``Z``.

Every JSON and YAML document the CLI prints writes times with ``rfc3339`` (runs, keys,
audit events, revisions), so a script parses one format: ``2026-12-03T09:37:42.279Z``
(milliseconds, always present, so that the text sorts as the time does). It accepts the
forms the stores hold: epoch seconds (float), aware datetimes, and ISO 8601 text with an
offset. Tables print the same text. Pure: no clock is read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def rfc3339(value: float | int | datetime | str | None) -> str | None:
    """``value`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC; None stays None.

    A naive datetime, or text without an offset, is taken as UTC (the tables print UTC).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a boolean is not a time")
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, datetime):
        moment = value
    else:
        moment = parse_time(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """RFC 3339 / ISO 8601 text as an aware UTC datetime; no offset means UTC.

    ``2026-12-03``, ``2026-12-03T09:37``, ``2026-12-03 09:37:42Z`` and
    ``2026-12-03T10:37:42+01:00`` are all accepted; ``ValueError`` otherwise.
    """
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def times_in(data: Any, keys: frozenset[str]) -> Any:
    """A copy of ``data`` (dicts and lists) with the values under ``keys`` in RFC 3339."""
    if isinstance(data, dict):
        return {
            k: (rfc3339(v) if k in keys and not isinstance(v, dict | list) else times_in(v, keys))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [times_in(item, keys) for item in data]
    return data
