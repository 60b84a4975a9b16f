"""The security agent's checks: secrets in files, risky dependency specs, risky config.

- Secrets: Yelp's ``detect-secrets`` with its default plugins and filters, over every
  text file the walker keeps (not only Python). A finding names the kind of secret and
  the line, never the value; the fix is manual (move it out, rotate it).
- Dependencies (``DEP0xx``), from ``requirements*.txt`` and ``pyproject.toml``: a
  requirement with no version constraint at all, a VCS/URL requirement not pinned to a
  commit, and an insecure package index (``http://`` index, ``--trusted-host``). devskyy
  has no vulnerability database and does not claim to find known CVEs (use pip-audit).
- Configuration (``CFG0xx``): ``DEBUG = True`` in Python settings or in ``.env``/INI/YAML/
  TOML files, ``verify=False`` on any call, ``ALLOWED_HOSTS`` with ``"*"``, CORS allowing
  every origin, session/CSRF cookies without ``Secure``.
"""

from __future__ import annotations

import ast
import contextlib
import re
import threading
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from devskyy.agents.codecheck.files import relative, walk
from devskyy.agents.codecheck.issues import Issue, Severity, Tool, sort_issues, summarize
from devskyy.agents.codecheck.perf import parse

MAX_FILE_BYTES = 1_000_000
ROTATE_ACTION = (
    "manual: remove the secret from the file, load it from the environment or a secret store,"
    " and rotate it"
)
_CONFIG_SUFFIXES = (".env", ".ini", ".cfg", ".yaml", ".yml", ".toml", ".conf")
_DEBUG_LINE = re.compile(r"^\s*(?:export\s+)?DEBUG\s*[=:]\s*[\"']?(true|1|yes|on)\b", re.I)
_INSECURE_INDEX = re.compile(r"^\s*(?:-i|--index-url|--extra-index-url)[\s=]+http://", re.I)
_COMMIT = re.compile(r"@[0-9a-f]{40}\b")
# detect-secrets keeps its settings in a global; one user at a time.
_SETTINGS_LOCK = threading.Lock()
HIDDEN = "(secret hidden)"  # what redaction puts in a secret's place
# A secret value this long is masked wherever it appears as a whole word; a shorter one
# only on the line detect-secrets flagged (elsewhere it is likely unrelated text).
LONG_SECRET = 12


@contextlib.contextmanager
def detect_secrets() -> Iterator[Callable[[str], Iterable[Any]]]:
    """detect-secrets' ``scan_file`` under its default settings, one user at a time.

    Imported here, on use: it costs a tenth of a second that starting the agents (and
    every ``devskyy run``) need not pay.
    """
    from detect_secrets.core.scan import scan_file  # noqa: PLC0415 - heavy, on use
    from detect_secrets.settings import default_settings  # noqa: PLC0415

    with _SETTINGS_LOCK, default_settings():
        yield scan_file


def _text(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) > MAX_FILE_BYTES or b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def _slug(kind: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-")


def secrets(root: Path, files: Sequence[Path]) -> list[Issue]:
    """detect-secrets findings (kind and line only)."""
    found: list[Issue] = []
    with detect_secrets() as scan_file:
        for path in files:
            if _text(path) is None:
                continue
            rel = relative(root, path)
            for secret in scan_file(str(path)):
                found.append(
                    Issue(
                        file=rel,
                        line=int(secret.line_number),
                        column=1,
                        rule=f"secret/{_slug(secret.type)}",
                        tool=Tool.DETECT_SECRETS.value,
                        severity=Severity.HIGH.value,
                        message=f"Possible secret ({secret.type}); value hidden",
                        action=ROTATE_ACTION,
                    )
                )
    return found


def _dep_issue(file: str, line: int, rule: str, severity: Severity, message: str) -> Issue:
    return Issue(file, line, 1, rule, Tool.DEPENDENCIES.value, severity.value, message)


def _requirement_issues(file: str, line: int, spec: str, project: str = "") -> Iterator[Issue]:
    """DEP findings of one requirement; ``project`` is the declaring project's own name,
    whose extras (``attrs[tests]`` in attrs' own extras) are the project itself, not a
    release from an index."""
    # packaging on use: starting the agents of `devskyy run` should not pay for it.
    from packaging.requirements import InvalidRequirement, Requirement  # noqa: PLC0415
    from packaging.utils import canonicalize_name  # noqa: PLC0415

    try:
        req = Requirement(spec)
    except InvalidRequirement:
        return
    if project and canonicalize_name(req.name) == canonicalize_name(project):
        return
    if req.url:
        if req.url.startswith(("git+", "hg+", "svn+", "bzr+")) and not _COMMIT.search(req.url):
            yield _dep_issue(
                file,
                line,
                "DEP002",
                Severity.MEDIUM,
                f"`{req.name}` comes from a VCS URL not pinned to a commit hash",
            )
        elif req.url.startswith("http://"):
            yield _dep_issue(
                file,
                line,
                "DEP003",
                Severity.HIGH,
                f"`{req.name}` is downloaded over plain http://",
            )
    elif not str(req.specifier):
        yield _dep_issue(
            file,
            line,
            "DEP001",
            Severity.LOW,
            f"`{req.name}` has no version constraint: any future release installs",
        )


def requirements_txt(file: str, text: str) -> list[Issue]:
    """DEP findings in a pip requirements file."""
    found: list[Issue] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if _INSECURE_INDEX.match(line):
            found.append(
                _dep_issue(
                    file, number, "DEP003", Severity.HIGH, "package index over plain http://"
                )
            )
        elif line.startswith("--trusted-host"):
            found.append(
                _dep_issue(
                    file,
                    number,
                    "DEP003",
                    Severity.HIGH,
                    "--trusted-host turns off TLS checks for an index",
                )
            )
        elif line.startswith(("-e ", "--editable ")):
            url = line.split(None, 1)[1]
            if url.startswith(("git+", "hg+")) and not _COMMIT.search(url):
                found.append(
                    _dep_issue(
                        file,
                        number,
                        "DEP002",
                        Severity.MEDIUM,
                        f"editable VCS requirement not pinned to a commit: {url.split('#')[0]}",
                    )
                )
        elif not line.startswith("-"):
            found.extend(_requirement_issues(file, number, line))
    return found


def pyproject(file: str, text: str) -> list[Issue]:
    """DEP findings in ``[project] dependencies`` and ``optional-dependencies``."""
    try:
        project = tomllib.loads(text).get("project", {})
    except tomllib.TOMLDecodeError:
        return []
    specs: list[str] = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        specs.extend(extra)
    lines = text.splitlines()
    found: list[Issue] = []
    for spec in specs:
        number = next(
            (i for i, line in enumerate(lines, 1) if f'"{spec}"' in line or f"'{spec}'" in line), 1
        )
        found.extend(_requirement_issues(file, number, spec, str(project.get("name", ""))))
    return found


def _config_issue(
    file: str, node: ast.AST | int, rule: str, severity: Severity, message: str
) -> Issue:
    line = node if isinstance(node, int) else getattr(node, "lineno", 1)
    column = 1 if isinstance(node, int) else getattr(node, "col_offset", 0) + 1
    return Issue(file, line, column, rule, Tool.CONFIG.value, severity.value, message)


def _is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def python_config(file: str, source: str) -> list[Issue]:
    """CFG findings in Python source."""
    try:
        tree = parse(source, file)
    except (SyntaxError, ValueError):
        return []
    found: list[Issue] = []
    settings_level = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef))]
    for scope in settings_level:
        for stmt in getattr(scope, "body", []):
            if not isinstance(stmt, ast.Assign | ast.AnnAssign):
                continue
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            value = stmt.value
            if "DEBUG" in names and _is_const(value, True):
                found.append(
                    _config_issue(
                        file,
                        stmt,
                        "CFG001",
                        Severity.MEDIUM,
                        "DEBUG = True: debug mode leaks source and settings; "
                        "read it from the environment, off by default",
                    )
                )
            if (
                "ALLOWED_HOSTS" in names
                and isinstance(value, ast.List | ast.Tuple)
                and any(isinstance(e, ast.Constant) and e.value == "*" for e in value.elts)
            ):
                found.append(
                    _config_issue(
                        file,
                        stmt,
                        "CFG003",
                        Severity.MEDIUM,
                        "ALLOWED_HOSTS accepts any host ('*')",
                    )
                )
            if names & {"CORS_ORIGIN_ALLOW_ALL", "CORS_ALLOW_ALL_ORIGINS"} and _is_const(
                value, True
            ):
                found.append(
                    _config_issue(file, stmt, "CFG004", Severity.MEDIUM, "CORS allows every origin")
                )
            if names & {"SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"} and _is_const(value, False):
                found.append(
                    _config_issue(
                        file, stmt, "CFG005", Severity.LOW, "cookie sent without the Secure flag"
                    )
                )
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "verify" and _is_const(kw.value, False):
                    found.append(
                        _config_issue(
                            file,
                            kw.value,
                            "CFG002",
                            Severity.HIGH,
                            "TLS certificate verification turned off (verify=False)",
                        )
                    )
    return found


def text_config(file: str, text: str) -> list[Issue]:
    """CFG001 in ``.env``/INI/YAML/TOML files: a DEBUG switch turned on."""
    return [
        _config_issue(
            file, number, "CFG001", Severity.MEDIUM, "DEBUG turned on in a configuration file"
        )
        for number, line in enumerate(text.splitlines(), start=1)
        if _DEBUG_LINE.match(line)
    ]


def dependencies_and_config(root: Path, files: Sequence[Path]) -> list[Issue]:
    """Every DEP and CFG finding in ``files``."""
    found: list[Issue] = []
    for path in files:
        name = path.name
        is_config = name.endswith(_CONFIG_SUFFIXES) or name.startswith(".env")
        relevant = (
            name.endswith(".py")
            or is_config
            or (name.startswith("requirements") and name.endswith(".txt"))
        )
        if not relevant:
            continue
        text = _text(path)
        if text is None:
            continue
        rel = relative(root, path)
        if name.endswith(".py"):
            found += python_config(rel, text)
        elif name.startswith("requirements") and name.endswith(".txt"):
            found += requirements_txt(rel, text)
        else:
            if name == "pyproject.toml":
                found += pyproject(rel, text)
            found += text_config(rel, text)
    return found


def scan_tree(root: Path, checks: Sequence[str]) -> dict[str, Any]:
    """The security agent's report for every file the walker keeps under ``root``."""
    root = root.resolve()
    files = walk(root)
    issues: list[Issue] = []
    if "secrets" in checks:
        issues += secrets(root, files)
    found = dependencies_and_config(root, files)
    if "dependencies" in checks:
        issues += [i for i in found if i.tool == Tool.DEPENDENCIES]
    if "config" in checks:
        issues += [i for i in found if i.tool == Tool.CONFIG]
    ordered = sort_issues(issues)
    return {
        "target_path": str(root),
        "checks": list(checks),
        "files_scanned": len(files),
        "issues": [i.to_dict() for i in ordered],
        "counts": summarize(ordered),
    }
