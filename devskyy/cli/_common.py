"""What every command shares: the context object, output formats, the error boundary.

``error_boundary`` is the one place where exceptions become exit codes and messages:
a ``DevskyyError`` prints its message to stderr and exits 1; anything else is a bug and
still never shows a traceback unless ``DEVSKYY_DEBUG`` is set. A closed output pipe
(``devskyy audit | head``) ends the command quietly with 141 (128 + SIGPIPE, as git).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from devskyy.errors import DevskyyError, ManifestError
from devskyy.extras import missing_extra_message

P = ParamSpec("P")
R = TypeVar("R")

OUTPUT_FORMATS = ("table", "json", "yaml")


@dataclass
class CliContext:
    """Global options, resolved lazily so that ``--help`` touches nothing."""

    state_url: str | None = None
    _resolved: str | None = field(default=None, repr=False)

    def url(self) -> str:
        """The state URL in force (option, env, or ``./.devskyy/state.db``).

        A SQLite file in a folder that does not exist is an error, not a new empty
        store: ``--state sqlite:////srv/devsky/state.db`` (a typo) must not read as
        "no agents" or quietly start a second system. Only the default ``.devskyy/``
        folder is created on first use.
        """
        if self._resolved is None:
            from devskyy.adapters.store_url import resolve_state_url  # noqa: PLC0415 - when used

            url = resolve_state_url(self.state_url, Path.cwd())
            check_sqlite_folder(url)
            self._resolved = url
        return self._resolved


def check_sqlite_folder(url: str) -> None:
    """A DevskyyError when a SQLite URL names a folder, or a file in a missing folder."""
    from devskyy.adapters.store_url import sqlite_file  # noqa: PLC0415 - when used

    path = sqlite_file(url)  # the file the driver opens: file: URIs and ?query included
    if path is None:
        return
    if path.is_dir():
        raise DevskyyError(
            f"state store {url} is a folder; name a file in it (sqlite:///{path / 'state.db'})"
        )
    folder = path.parent
    if folder.is_dir() or (folder.name == ".devskyy" and folder.parent.is_dir()):
        return
    if folder.exists():
        raise DevskyyError(f"state store {url}: {folder} is not a folder")
    raise DevskyyError(
        f"state store {url}: the folder {folder} does not exist "
        "(create it, or correct --state / DEVSKYY_STATE_URL)"
    )


def error_boundary(fn: Callable[P, R]) -> Callable[P, R]:
    """Map errors to exit codes and one-line messages on stderr."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
            return result
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`devskyy audit | head`): stop quietly, as git does.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(141) from None
        except ManifestError as exc:
            for problem in exc.problems:
                fatal(str(problem))
            raise SystemExit(1) from None
        except DevskyyError as exc:
            fatal(f"error: {exc}")
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            raise SystemExit(130) from None
        except Exception as exc:
            if (store := _store_error(exc)) is not None:
                fatal(f"error: {store}")  # a driver error: said plainly, without SQL
                raise SystemExit(1) from None
            if (missing := missing_extra_message(exc)) is not None:
                click.echo(f"error: {missing}", err=True)  # an extra not installed
                raise SystemExit(1) from None
            if os.environ.get("DEVSKYY_DEBUG"):
                raise
            fatal(f"internal error: {type(exc).__name__}: {exc}")
            fatal("(set DEVSKYY_DEBUG=1 for a traceback)")
            raise SystemExit(1) from None

    return wrapper


def fatal(text: str) -> None:
    """One line on stderr; one JSON log line instead once ``--log-format json`` is in force."""
    if _json_logging():
        message = text.removeprefix("error: ")
        logging.getLogger("devskyy.cli").error(message, extra={"fields": {"fatal": True}})
    else:
        click.echo(text, err=True)


def _json_logging() -> bool:
    logs = sys.modules.get("devskyy.adapters.logs")  # configured only if it was imported
    if logs is None:
        return False
    handlers = logging.getLogger("devskyy").handlers
    return any(isinstance(h.formatter, logs.JsonFormatter) for h in handlers)


def _store_error(exc: Exception) -> str | None:
    """The one-line message for a database driver error, else None."""
    if type(exc).__module__.split(".")[0] not in ("sqlalchemy", "sqlite3", "psycopg"):
        return None
    from devskyy.adapters.store_errors import store_error_message  # noqa: PLC0415 - error path only

    url = None
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(CliContext) if ctx is not None else None
    if obj is not None:
        with contextlib.suppress(Exception):
            url = obj.url()
    return store_error_message(exc, url)


def output_option(*choices: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """``-o/--output`` with the given formats (first is the default)."""
    formats = choices or OUTPUT_FORMATS
    return click.option(
        "-o",
        "--output",
        type=click.Choice(formats),
        default=formats[0],
        show_default=True,
        help="Output format.",
    )


def emit(data: Any, fmt: str) -> None:
    """Print data as JSON or YAML (tables are each command's own)."""
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    elif fmt == "yaml":
        import yaml  # noqa: PLC0415 - only for -o yaml

        click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), nl=False)
    else:
        raise click.UsageError(f"unsupported output format {fmt!r}")


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
MANIFEST_KEYS = frozenset({"before", "after"})  # documents inside a plan: their own names


def snake_keys(data: Any, keep: frozenset[str] = MANIFEST_KEYS) -> Any:
    """``data`` with camelCase keys in snake_case, the one style of the CLI's JSON/YAML
    (``liveRevision`` -> ``live_revision``); values under ``keep`` (manifest documents,
    whose field names are the manifests' own) are left as they are."""
    if isinstance(data, dict):
        return {
            (_CAMEL.sub("_", k).lower() if isinstance(k, str) else k): (
                v if k in keep else snake_keys(v, keep)
            )
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [snake_keys(item, keep) for item in data]
    return data


@contextlib.contextmanager
def problems_reported(path: str, output: str) -> Iterator[None]:
    """Invalid manifests under ``path``: every problem, then their count, exit 1.

    With ``-o json|yaml`` the problems are also the document on stdout (``path``,
    ``valid``, ``problems``, as ``validate -o json``), so a script reads them there.
    """
    try:
        yield
    except ManifestError as exc:
        count = len(exc.problems)
        if output != "table":
            emit(
                {"path": path, "valid": False, "problems": [_problem(p) for p in exc.problems]},
                output,
            )
        else:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
        click.echo(f"{path}: {count} problem{'' if count == 1 else 's'}", err=True)
        raise SystemExit(1) from None


def _problem(problem: object) -> Any:
    to_dict = getattr(problem, "to_dict", None)  # a Problem; anything else as its text
    return to_dict() if callable(to_dict) else {"message": str(problem)}


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain, aligned text table (kubectl style: upper-case headers, two spaces)."""
    cells = [[h.upper() for h in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def use_color() -> bool:
    """Colour only on a terminal, never with ``NO_COLOR`` set to a non-empty value
    (https://no-color.org: an empty ``NO_COLOR`` does not turn colour off), and never on
    ``TERM=dumb`` (a terminal that shows escape codes as text)."""
    return live_terminal() and not os.environ.get("NO_COLOR")


def live_terminal() -> bool:
    """stdout is a terminal that understands escape codes (not ``TERM=dumb``)."""
    return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"


if TYPE_CHECKING:  # click >= 8.2 types ParamType generically; older clicks cannot subscript it
    _ParamType = click.ParamType[Any]
else:
    _ParamType = click.ParamType


class Rfc3339(_ParamType):
    """A time as RFC 3339 (``2026-12-03T09:30:00Z``); without an offset it is UTC, as
    every table prints times (``2026-12-03 09:30`` and a bare date work too)."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        from devskyy.core.timefmt import parse_time  # noqa: PLC0415 - only when given

        try:
            return parse_time(value)
        except ValueError:
            self.fail(
                f"{value!r} is not an RFC 3339 time (e.g. 2026-12-03T09:30:00Z; "
                "without an offset the time is UTC)",
                param,
                ctx,
            )


workspace_option = click.option(
    "--workspace",
    "workspaces",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder scanner and fixer requests may name (repeatable) [default: ./workspace].",
)
rate_limit_option = click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Requests per minute for a principal without an Agent rateLimit [default: 100].",
)


def _allowed_commands(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    from devskyy.core.allowed_commands import BadAllowedCommand, checked  # noqa: PLC0415

    try:
        return checked(values)
    except BadAllowedCommand as exc:
        raise click.BadParameter(str(exc)) from None


allow_command_option = click.option(
    "--allow-command",
    "allowed_commands",
    multiple=True,
    metavar="COMMAND",
    callback=_allowed_commands,
    help="A command line an API request may give a command input such as scan_and_fix's "
    "verify_command, matched word for word (repeatable). It runs as the server's user "
    "for any key that may start the workflow. [default: none]",
)


def api_settings(
    workspaces: tuple[Path, ...], rate_limit: int | None, allowed_commands: tuple[str, ...] = ()
) -> Any:
    """``ApiSettings`` from ``--workspace``, ``--rate-limit`` and ``--allow-command``
    (serve, watch --serve).

    A workspace folder that does not exist (the default ``./workspace`` in a fresh
    checkout) is warned about at start: every scanner and fixer path would be refused.
    The allowed command lines are logged at start: they are the operator's own settings,
    and whoever reads the log should see that requests may run them.
    """
    from devskyy.api import ApiSettings  # noqa: PLC0415 - FastAPI is slow to import

    roots = tuple(p.resolve() for p in workspaces) or (Path.cwd() / "workspace",)
    for root in roots:
        if not root.is_dir():
            logging.getLogger("devskyy.serve").warning(
                f"workspace folder {root} does not exist: scanner and fixer requests "
                "will find no files until it does (choose one with --workspace DIR)",
                extra={"fields": {"workspace": str(root)}},
            )
    from devskyy.core.keys import redact_text  # noqa: PLC0415

    for command in map(redact_text, allowed_commands):  # an API key in one stays out
        logging.getLogger("devskyy.serve").info(
            f"API requests may run the command {command!r} (--allow-command)",
            extra={"fields": {"allowed_command": command}},
        )
    return ApiSettings(
        workspace_roots=roots, rate_limit=rate_limit, allowed_commands=allowed_commands
    )


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for uvicorn; a port in use is a DevskyyError.

    Binding here, before uvicorn starts, makes "address in use" one ``error:`` line
    with exit 1 (uvicorn would log and exit on its own) and lets the caller log the
    URL only once the port is really ours (port 0 included).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DevskyyError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def socket_url(sock: socket.socket) -> str:
    """``http://HOST:PORT`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
