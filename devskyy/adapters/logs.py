"""Logging set-up: human text or one JSON object per line, with secrets redacted.

``configure(fmt, level)`` installs one handler on the ``devskyy`` logger. Extra fields
given as ``logger.info("msg", extra={"fields": {...}})`` are merged into the JSON
object (and appended as ``key=value`` in text). A redaction filter removes anything
shaped like a devskyy API key (``dsk_…``) or a bearer token from messages and fields
before any handler sees them: secrets never reach a log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

SECRET_PATTERNS = (
    re.compile(r"dsk_[A-Za-z0-9]+_[A-Za-z0-9]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"sk-ant-[A-Za-z0-9_-]+"),
)
REDACTED = "[REDACTED]"


def redact(text: str) -> str:
    """Replace anything that looks like a credential."""
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(
            lambda m: (m.group(1) if m.lastindex else "") + REDACTED,
            text,
        )
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Scrub credentials from the message, its arguments and structured fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = _redact_value(fields)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339, UTC, ``Z``), level, logger, message, fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            # RFC 3339 with Z, as every time in the CLI's JSON (devskyy.core.timefmt).
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            data["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(data, default=str, sort_keys=False)


class TextFormatter(logging.Formatter):
    """``HH:MM:SS level message key=value …`` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        line = f"{stamp} {record.levelname.lower():7} {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += " " + " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items())
        if record.exc_info and record.exc_info[0] is not None:
            line += f" error={record.exc_info[0].__name__}: {record.exc_info[1]}"
        return line


def configure(fmt: str = "text", level: str = "info", stream: TextIO | None = None) -> None:
    """Send ``devskyy.*`` logs to ``stream`` (stderr) as text or JSON."""
    logger = logging.getLogger("devskyy")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
