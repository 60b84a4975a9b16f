"""Found by using devskyy as a platform engineer would (helper H8): editor files.

Emacs marks a modified buffer with ``.#NAME`` (a symbolic link to ``user@host.pid``
that does not exist): ``validate`` failed with "cannot read file" while someone edited
a manifest, and the watch daemon would have rejected the tree.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from devskyy.adapters.manifest_files import DiskManifestFiles, MemoryManifestFiles
from devskyy.cli import main

AGENT = b"""\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: seo
spec:
  module: devskyy.agents.seo:SeoAgent
"""


def test_hidden_files_are_skipped_but_read_when_named(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "seo.yaml").write_bytes(AGENT)
    (tmp_path / "m" / ".draft.yaml").write_bytes(b"not: [valid\n")
    os.symlink("ops@laptop.4242:1700000000", tmp_path / "m" / ".#seo.yaml")
    disk = DiskManifestFiles(cwd=tmp_path)
    assert [f.name for f in disk.read_tree("m")] == ["m/seo.yaml"]
    [draft] = disk.read_tree("m/.draft.yaml")
    assert draft.data == b"not: [valid\n"
    memory = MemoryManifestFiles({"m/seo.yaml": AGENT, "m/.draft.yaml": b"x: [\n"})
    assert [f.name for f in memory.read_tree("m")] == ["m/seo.yaml"]
    assert [f.name for f in memory.read_tree("m/.draft.yaml")] == ["m/.draft.yaml"]


def test_validate_while_emacs_edits_a_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "seo.yaml").write_bytes(AGENT)
    os.symlink("ops@laptop.4242:1700000000", tmp_path / "m" / ".#seo.yaml")
    result = CliRunner().invoke(main, ["validate", "m"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "m: 0 roles, 0 role bindings, 1 agent, 0 workflows: valid\n"
