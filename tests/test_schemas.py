"""The committed JSON Schemas are exactly what the models generate."""

from __future__ import annotations

from pathlib import Path

import pytest

from devskyy.model.manifests import KINDS
from devskyy.model.schemas import render


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("folder", ["schemas", "devskyy/schemas"])
def test_committed_schema_matches_model(repo_root: Path, kind: str, folder: str) -> None:
    committed = (repo_root / folder / f"{kind.lower()}.json").read_text(encoding="utf-8")
    assert committed == render(kind), (
        f"{folder}/{kind.lower()}.json is stale: run python -m devskyy.model.schemas"
    )
