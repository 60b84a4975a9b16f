"""The real watchdog watcher follows the tree when deploy tools replace it.

Before, the inotify watch stayed on the replaced folder: after ``rm -rf`` and a checkout,
a rename swap or an atomic symlink swap, no event ever came again (changes waited for the
60 s resync) and nothing was logged. Each test replaces the folder (or a parent), waits for
the re-arm hint, then edits a file in the new folder and waits for its event: proof that the
new folder is watched. Waiting is for events (with a generous timeout), never a sleep.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from devskyy.adapters.watcher import FsWatcher, parents_to_watch

TIMEOUT = 10.0


async def _next_matching(watcher: FsWatcher, wanted: Callable[[str], bool]) -> str:
    """The first queued path for which ``wanted`` is true (others are skipped)."""

    async def loop() -> str:
        while True:
            path = await watcher.queue.get()
            if wanted(path):
                return path

    return await asyncio.wait_for(loop(), TIMEOUT)


def _run(
    tmp_path: Path,
    watched: Path,
    replace: Callable[[], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, str, str]:
    """Watch ``watched``, run ``replace`` (returns the new real folder), then edit in it."""
    monkeypatch.chdir(tmp_path)

    async def scenario() -> tuple[int, str, str]:
        watcher = FsWatcher(watched, asyncio.get_running_loop())
        watcher.start()
        try:
            # The watch works before anything is replaced.
            (watched / "before.yaml").write_text("a: 1\n")
            await _next_matching(watcher, lambda p: p.endswith("before.yaml"))
            new_folder = await asyncio.to_thread(replace)
            hint = await _next_matching(watcher, lambda p: p == str(watcher.given))
            (new_folder / "after.yaml").write_text("b: 2\n")
            after = await _next_matching(watcher, lambda p: p.endswith("after.yaml"))
            return watcher.rearmed, hint, after
        finally:
            watcher.stop()

    return asyncio.run(scenario())


def _manifests(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "agent.yaml").write_text("x: 1\n")
    return folder


def test_rm_rf_and_recreate_rearms_the_watch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tree = _manifests(tmp_path / "manifests")

    def replace() -> Path:
        shutil.rmtree(tree)
        return _manifests(tree)  # a checkout writing the folder again

    with caplog.at_level(logging.WARNING, logger="devskyy.watch"):
        rearmed, hint, after = _run(tmp_path, tree, replace, monkeypatch)
    assert rearmed >= 1
    assert hint == str(tree)
    assert after == str(tree / "after.yaml")
    assert "manifest folder replaced; watching the new one" in caplog.messages


def test_rename_swap_rearms_the_watch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = _manifests(tmp_path / "manifests")

    def replace() -> Path:
        fresh = _manifests(tmp_path / "manifests.new")
        os.rename(tree, tmp_path / "manifests.old")
        os.rename(fresh, tree)
        return tree

    rearmed, hint, after = _run(tmp_path, tree, replace, monkeypatch)
    assert rearmed >= 1
    assert hint == str(tree)
    assert after == str(tree / "after.yaml")


def test_atomic_symlink_swap_rearms_on_the_new_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = _manifests(tmp_path / "releases" / "v1")
    current = tmp_path / "current"
    current.symlink_to(v1, target_is_directory=True)

    def replace() -> Path:
        v2 = _manifests(tmp_path / "releases" / "v2")
        (tmp_path / "current.tmp").symlink_to(v2, target_is_directory=True)
        os.replace(tmp_path / "current.tmp", current)  # what `mv -T` does
        return v2

    rearmed, hint, after = _run(tmp_path, current, replace, monkeypatch)
    assert rearmed >= 1
    assert hint == str(current)
    assert after == str(tmp_path / "releases" / "v2" / "after.yaml")


def test_replacing_a_parent_rearms_the_watch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = _manifests(tmp_path / "deploy" / "app" / "manifests")

    def replace() -> Path:
        fresh = _manifests(tmp_path / "deploy" / "app.new" / "manifests")
        os.rename(tmp_path / "deploy" / "app", tmp_path / "deploy" / "app.old")
        os.rename(fresh.parent, tmp_path / "deploy" / "app")
        return tree

    rearmed, hint, after = _run(tmp_path, tree, replace, monkeypatch)
    assert rearmed >= 1
    assert hint == str(tree)
    assert after == str(tree / "after.yaml")


def test_a_removed_folder_is_logged_and_picked_up_when_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tree = _manifests(tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)

    async def scenario() -> str:
        watcher = FsWatcher(tree, asyncio.get_running_loop())
        watcher.start()
        try:
            await asyncio.to_thread(shutil.rmtree, tree)
            await _wait_for(lambda: "manifest folder is gone" in " ".join(caplog.messages))
            await asyncio.to_thread(_manifests, tree)
            return await _next_matching(watcher, lambda p: p == str(tree))
        finally:
            watcher.stop()

    with caplog.at_level(logging.WARNING, logger="devskyy.watch"):
        assert asyncio.run(scenario()) == str(tree)
    assert caplog.messages.count("manifest folder is gone; waiting for it to come back") == 1


async def _wait_for(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), TIMEOUT)


def test_parents_to_watch_stop_at_the_current_directory(tmp_path: Path) -> None:
    given = tmp_path / "deploy" / "current" / "manifests"
    assert parents_to_watch(given, tmp_path) == [
        tmp_path / "deploy" / "current",
        tmp_path / "deploy",
        tmp_path,
    ]
    # Outside the current directory: up to the top-level folder, never "/" itself.
    assert parents_to_watch(Path("/srv/app/manifests"), tmp_path) == [
        Path("/srv/app"),
        Path("/srv"),
    ]
