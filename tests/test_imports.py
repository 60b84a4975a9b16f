"""Every module of the package imports alone, in a fresh interpreter (no import cycles).

An import cycle shows only when a module is the first of its cycle to be imported, so
each module is imported on its own: a clean interpreter preloads the third-party
libraries (nothing of devskyy), then forks one child per module; each child imports that
one module and reports. Forking keeps this to about a second for the whole package.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import devskyy

ROOT = Path(devskyy.__file__).resolve().parent
pytestmark = pytest.mark.slow

CHILD = r"""
import importlib, json, os, sys, traceback

# Third-party libraries only: what a child imports of devskyy, it imports itself.
for name in json.loads(sys.argv[2]):
    try:
        importlib.import_module(name)
    except Exception:
        pass
assert not any(m == "devskyy" or m.startswith("devskyy.") for m in sys.modules)
failures = {}
for module in json.loads(sys.argv[1]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(module)
            message = ""
        except BaseException:
            message = traceback.format_exc(limit=-3)
        os.write(write, message.encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode()
    if text or status:
        failures[module] = text or f"exit status {status}"
print(json.dumps(failures))
"""


def package_modules() -> list[str]:
    found = ["devskyy"]
    for info in pkgutil.walk_packages([str(ROOT)], prefix="devskyy."):
        if info.name.startswith(("devskyy.migrations.versions", "devskyy.migrations.env")):
            continue  # Alembic runs these by path, inside its own context, never by import
        found.append(info.name)
    return sorted(found)


def test_the_package_has_the_modules_this_test_expects() -> None:
    modules = package_modules()
    assert len(modules) > 100
    for expected in (
        "devskyy.runtime.attempt",
        "devskyy.runtime.live",
        "devskyy.api.context",
        "devskyy.api.routers.orchestrator",
        "devskyy.core.tasks",
    ):
        assert expected in modules


def third_party() -> list[str]:
    """The external packages the package imports (preloaded: they cannot form our cycles)."""
    graph = grimp.build_graph("devskyy", include_external_packages=True)
    return sorted(m for m in graph.modules if not m.startswith("devskyy"))


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    modules = package_modules()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(modules), json.dumps(third_party())],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT.parent,
    )
    assert done.returncode == 0, done.stderr
    failures = json.loads(done.stdout.strip().splitlines()[-1])
    assert failures == {}, "\n\n".join(f"{m}:\n{t}" for m, t in failures.items())
