"""Packaging as a user meets it: ``python -m build``, ``twine check``, and a core install.

The sdist must carry what its tests read (manifests, schemas, docs, examples, test
data); the metadata must have a licence, classifiers and project URLs; a plain
``pip install devskyy`` must run validate/plan/apply without the optional parts, and a
missing optional part must be one line naming its extra.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from devskyy.cli import main
from devskyy.extras import EXTRA_OF_MODULE, missing_extra_message
from devskyy.model.schemas import render

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def _import_name(requirement: str) -> str:
    """``detect-secrets>=1.4`` -> ``detect_secrets``; ``psycopg[binary]>=3.1`` -> ``psycopg``."""
    name = re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0]
    return name.lower().replace("-", "_")


def test_license_file_is_the_mit_licence_pyproject_names() -> None:
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


def test_metadata_has_classifiers_and_no_invented_urls() -> None:
    classifiers = PROJECT["classifiers"]
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "Typing :: Typed" in classifiers
    assert not any(c.startswith("License ::") for c in classifiers)  # PEP 639: license =
    # No public home yet: no made-up addresses (pyproject says where to add them).
    assert "urls" not in PROJECT


def test_every_optional_dependency_is_in_the_extras_table() -> None:
    # The one-line "pip install 'devskyy[X]'" must name an extra that brings the module.
    extras = PROJECT["optional-dependencies"]
    for extra in sorted(set(extras) - {"all", "test"}):  # every optional part, new ones too
        for requirement in extras[extra]:
            module = _import_name(requirement)
            named = EXTRA_OF_MODULE.get(module)
            assert named is not None, f"{module} (extra {extra}) is missing from EXTRA_OF_MODULE"
            assert module in {_import_name(r) for r in extras[named]}, (module, named)
    core = {_import_name(r) for r in PROJECT["dependencies"]}
    assert not core & set(EXTRA_OF_MODULE), "a core dependency is marked optional"
    assert extras["all"] == ["devskyy[serve,watch,agents]"]


def test_a_missing_optional_module_is_one_line_naming_the_extra() -> None:
    try:
        raise ModuleNotFoundError("No module named 'uvicorn'", name="uvicorn")
    except ModuleNotFoundError as exc:
        missing = exc
    assert missing_extra_message(missing) == (
        "'uvicorn' is not installed: pip install 'devskyy[serve]' (the HTTP API and /metrics)"
    )
    wrapped = RuntimeError("cannot import the agent")
    wrapped.__cause__ = ModuleNotFoundError("x", name="libcst.codemod")
    assert missing_extra_message(wrapped) == (
        "'libcst' is not installed: pip install 'devskyy[agents]' (the built-in agents)"
    )
    assert missing_extra_message(ModuleNotFoundError("x", name="my_own_agent")) is None
    assert missing_extra_message(ValueError("x")) is None


def test_schema_write_puts_every_kind_in_a_folder(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "schemas"
    result = CliRunner().invoke(main, ["schema", "--write", str(target)])
    assert result.exit_code == 0, result.output
    names = ["agent.json", "workflow.json", "role.json", "rolebinding.json"]
    assert result.output == "".join(f"wrote {target / n}\n" for n in names)
    assert sorted(p.name for p in target.iterdir()) == sorted(names)
    assert (target / "agent.json").read_text() == render("Agent")
    # The same bytes as the repository's schemas/, which the shipped modelines name.
    assert (target / "workflow.json").read_bytes() == (ROOT / "schemas/workflow.json").read_bytes()


def test_schema_write_one_kind_and_errors(tmp_path: Path) -> None:
    one = CliRunner().invoke(main, ["schema", "Role", "--write", str(tmp_path)])
    assert (one.exit_code, one.output) == (0, f"wrote {tmp_path / 'role.json'}\n")
    blocked = tmp_path / "file"
    blocked.write_text("")
    bad = CliRunner().invoke(main, ["schema", "--write", str(blocked / "x")])
    assert bad.exit_code == 1
    assert bad.stderr.startswith(f"error: cannot write {blocked / 'x' / 'agent.json'}: ")
    unknown = CliRunner().invoke(main, ["schema", "nope", "--write", str(tmp_path / "n")])
    assert unknown.exit_code == 1
    assert not (tmp_path / "n").exists()


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if built.returncode != 0 and "No module named build" in built.stderr:
        pytest.skip("the build package is not installed")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return out


def _one(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    twine = Path(sys.executable).with_name("twine")
    if not twine.exists():
        pytest.skip("twine is not installed")
    checked = subprocess.run(
        [str(twine), "check", "--strict", *map(str, sorted(dist.iterdir()))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sdist_carries_what_the_tests_read(dist: Path) -> None:
    with tarfile.open(_one(dist, "*.tar.gz")) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    for needed in (
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "CONTRIBUTING.md",
        ".pre-commit-hooks.yaml",
        "manifests/agents/scanner.yaml",
        "manifests/workflows/scan_and_fix.yaml",
        "manifests/roles/admin.yaml",
        "schemas/agent.json",
        "docs/cli.md",
        "docs/manifests.md",
        "examples/sample_project",
        "tests/conftest.py",
        "tests/data",
        "devskyy/schemas/agent.json",
    ):
        assert needed in names, needed
    assert not any("__pycache__" in n for n in names)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_wheel_metadata(dist: Path) -> None:
    with zipfile.ZipFile(_one(dist, "*.whl")) as wheel:
        metadata = wheel.read("devskyy-0.1.0.dist-info/METADATA").decode()
        files = set(wheel.namelist())
    assert "License-Expression: MIT" in metadata
    assert "devskyy-0.1.0.dist-info/licenses/LICENSE" in files
    assert "Classifier: Typing :: Typed" in metadata
    assert "Project-URL:" not in metadata
    for extra in ("serve", "watch", "agents", "postgres", "all"):
        assert f"Provides-Extra: {extra}" in metadata
    assert 'Requires-Dist: fastapi>=0.110; extra == "serve"' in metadata
    assert "devskyy/schemas/agent.json" in files
    assert "devskyy/py.typed" in files


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_core_install_runs_validate_plan_apply_and_names_the_extras(
    dist: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin/pip"), "install", "-q", str(_one(dist, "*.whl"))],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    work = tmp_path / "work"
    shutil.copytree(ROOT / "manifests", work / "manifests")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVSKYY_")}
    env["NO_COLOR"] = "1"

    def devskyy(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin/devskyy"), *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    absent = subprocess.run(
        [str(venv / "bin/python"), "-c", "import fastapi"], capture_output=True, check=False
    )
    assert absent.returncode == 1  # the core really is without the optional parts

    validated = devskyy("validate")
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.endswith(": valid\n")
    planned = devskyy("plan", "--detailed-exitcode")
    assert planned.returncode == 2, planned.stderr
    applied = devskyy("apply")
    assert applied.returncode == 0, applied.stderr
    assert "Applied revision 1" in applied.stdout
    assert devskyy("plan", "--detailed-exitcode").returncode == 0
    assert devskyy("get", "agents").returncode == 0

    served = devskyy("serve")
    assert (served.returncode, served.stdout) == (1, "")
    assert served.stderr == (
        "error: 'fastapi' is not installed: pip install 'devskyy[serve]' "
        "(the HTTP API and /metrics)\n"
    )
    watched = devskyy("watch", "manifests")
    assert (watched.returncode, watched.stdout) == (1, "")
    assert watched.stderr == (
        "error: devskyy watch: 'watchdog' is not installed: pip install 'devskyy[watch]' "
        "(the watch daemon)\n"
    )
    checked = devskyy("validate", "--check-agents")
    assert checked.returncode == 1
    assert (
        "manifests/agents/seo.yaml:9:3: spec.module: cannot import 'devskyy.agents.seo': "
        "'markdown' is not installed: pip install 'devskyy[agents]' (the built-in agents)"
    ) in checked.stderr.splitlines()
