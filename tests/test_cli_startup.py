"""The ``devskyy`` process entry and the garbage collector (issue 13, point 5).

Called as a process's entry point (the console script), the group keeps the cyclic
collector off while the command's modules import, freezes what they made and turns the
collector back on: a long command (``watch``, ``serve``, a long run) must collect
garbage as usual. Click's CliRunner (every other CLI test) calls ``main`` and must find
the collector exactly as it was. Each case runs in a fresh interpreter, where freezing
touches nothing but that interpreter.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys

from click.testing import CliRunner

from devskyy.cli import main

CHILD = r"""
import gc, json, sys
from devskyy.cli import main

if sys.argv[1] == "off":
    gc.disable()
try:
    main(sys.argv[2:], prog_name="devskyy")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}),
      file=sys.stderr)
"""


def entry(*args: str, collector: str = "on") -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, collector, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    result: dict[str, object] = json.loads(done.stderr.strip().splitlines()[-1])
    return result


def test_a_command_run_as_the_process_entry_imports_frozen_then_collects_again() -> None:
    got = entry("schema", "Agent")
    assert got["code"] == 0
    assert got["enabled"] is True
    assert isinstance(got["frozen"], int)
    assert got["frozen"] > 10_000  # the command's modules (click, devskyy, pydantic…)


def test_without_a_command_to_import_nothing_is_frozen_and_collection_goes_on() -> None:
    assert entry("--help") == {"code": 0, "enabled": True, "frozen": 0}
    assert entry("no-such-command") == {"code": 2, "enabled": True, "frozen": 0}


def test_a_process_that_turned_the_collector_off_keeps_it_off() -> None:
    assert entry("schema", "Agent", collector="off") == {
        "code": 0,
        "enabled": False,
        "frozen": 0,
    }


def test_the_cli_runner_leaves_the_collector_as_it_was() -> None:
    frozen = gc.get_freeze_count()
    result = CliRunner().invoke(main, ["schema", "Agent"])
    assert result.exit_code == 0, result.output
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
