"""Structured logs: JSON lines with fields, and credentials never written."""

from __future__ import annotations

import io
import json
import logging

from devskyy.adapters.logs import configure, redact


def test_json_lines_carry_fields_and_redact_secrets() -> None:
    out = io.StringIO()
    configure("json", "info", out)
    log = logging.getLogger("devskyy.test")
    log.info(
        "applied %s with key %s",
        "rev 3",
        "dsk_k1a2b3_S3cretS3cretS3cret9",
        extra={"fields": {"revision": 3, "auth": "Bearer abc.def"}},
    )
    record = json.loads(out.getvalue().strip())
    assert record["message"] == "applied rev 3 with key [REDACTED]"
    assert record["revision"] == 3
    assert record["auth"] == "Bearer [REDACTED]"
    assert record["level"] == "info"
    assert record["logger"] == "devskyy.test"
    assert "S3cret" not in out.getvalue()


def test_text_format_appends_fields() -> None:
    out = io.StringIO()
    configure("text", "info", out)
    logging.getLogger("devskyy.x").warning("rejected", extra={"fields": {"problems": 2}})
    line = out.getvalue().strip()
    assert line.endswith("warning rejected problems=2")


def test_redact_leaves_ordinary_text() -> None:
    assert redact("nothing secret here: dsk is a prefix") == "nothing secret here: dsk is a prefix"
