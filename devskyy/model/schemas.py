"""JSON Schema (Draft 2020-12) for each manifest kind, generated from the models.

``schemas/<kind>.json`` in the repository and ``devskyy/schemas/`` in the package are
these documents, committed; ``tests/test_schemas.py`` fails when they drift.
Regenerate with ``python -m devskyy.model.schemas``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from devskyy.model.manifests import KINDS

SCHEMA_BASE_URL = "https://devskyy.dev/schemas/v1"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_for(kind: str) -> dict[str, Any]:
    """The JSON Schema of one kind, as committed."""
    model = KINDS[kind]
    body = model.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": DIALECT, "$id": f"{SCHEMA_BASE_URL}/{kind.lower()}.json", **body}


def render(kind: str) -> str:
    """The committed text of one kind's schema file."""
    return json.dumps(schema_for(kind), indent=2, sort_keys=True) + "\n"


def write_all(folder: Path) -> list[Path]:
    """Write every kind's schema into ``folder``; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = folder / f"{kind.lower()}.json"
        path.write_text(render(kind), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - developer tool
    root = Path(__file__).resolve().parents[2]
    for target in (root / "schemas", root / "devskyy" / "schemas"):
        for p in write_all(target):
            sys.stdout.write(f"wrote {p}\n")
