"""Pure parts of the API: the permission table, workspace confinement, the app factory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devskyy.api import ApiSettings, create_app
from devskyy.api.permissions import PUBLIC, TABLE, Need
from devskyy.api.workspace import OutsideWorkspace, confine, confine_files
from devskyy.runtime.security import SecurityManager
from devskyy.runtime.system import open_system


def test_need_fills_path_values_and_refuses_patterns() -> None:
    need = Need("read", "agents/{agent_name}")
    assert need.fill({"agent_name": "scanner"}) == Need("read", "agents/scanner")
    # A value that could widen the resource (a wildcard, a slash) never reaches RBAC.
    assert need.fill({"agent_name": "*"}).resource == "agents/?"
    assert need.fill({"agent_name": "a/b"}).resource == "agents/?"
    assert need.fill({"agent_name": ".."}).resource == "agents/?"
    assert need.fill({}).resource == "agents/?"


def test_every_table_entry_is_a_known_permission() -> None:
    assert {n.permission for n in TABLE.values()} <= {"read", "write", "execute", "admin"}
    assert ("GET", "/healthz") in PUBLIC
    assert ("GET", "/healthz") not in TABLE


def test_confine(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "a").mkdir(parents=True)
    (ws / "a" / "f.py").write_text("")
    (tmp_path / "secret").mkdir()
    (ws / "link").symlink_to(tmp_path / "secret")
    assert confine("a", [ws]) == (ws / "a").resolve()
    assert confine(str(ws / "a"), [ws]) == (ws / "a").resolve()
    assert confine_files(["a/f.py"], [ws]) == [str((ws / "a" / "f.py").resolve())]
    with pytest.raises(OutsideWorkspace, match=r"through '\.\.' or a symbolic link"):
        confine("link", [ws])
    with pytest.raises(OutsideWorkspace, match=r"through '\.\.' or a symbolic link"):
        confine("a/../..", [ws])
    with pytest.raises(OutsideWorkspace, match=r"is outside the workspace roots$"):
        confine(str(tmp_path / "secret"), [ws])
    with pytest.raises(OutsideWorkspace, match="NUL"):
        confine("a\x00", [ws])
    with pytest.raises(OutsideWorkspace, match="no workspace roots"):
        confine("a", [])


def test_create_app_attaches_a_security_manager_once(tmp_path: Path) -> None:
    system = asyncio.run(open_system(f"sqlite:///{tmp_path / 's.db'}", start_agents=False))
    try:
        assert system.security is None
        create_app(system)
        manager = system.security
        assert isinstance(manager, SecurityManager)
        create_app(system, ApiSettings(workspace_roots=(tmp_path,)))
        assert system.security is manager
    finally:
        asyncio.run(system.close())
