"""What showing server paths (``api/paths_out.py``) adds to a run's answer.

A run view shaped as ``scan_and_fix``'s (a scanner output with N issues, the same under
``result`` and ``record``, a fixer output with a backup path and a headline) goes through
``ShownPaths.shown``. Baselines, measured in the same run on the same view: what the
answer pays anyway to leave the server as FastAPI sends it (validated against the route's
``RunView`` model, dumped, then ``json.dumps``), and ``json.dumps`` alone. Target: ``shown``
costs less than the answer's encoding.

    .venv/bin/python benchmarks/bench_paths_out.py [--issues 2000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devskyy.api.models import RunView
from devskyy.api.paths_out import ShownPaths

WORKSPACE = "/srv/devskyy/workspace"


def _view(issues: int) -> dict[str, Any]:
    scan = {
        "target_path": f"{WORKSPACE}/pkg",
        "files_scanned": issues // 4,
        "issues": [
            {
                "file": f"mod{n % 97}.py",
                "line": n,
                "rule": "F401",
                "message": "`os` imported but unused",
                "code": "import os  # see /usr/lib/python3/os.py",
            }
            for n in range(issues)
        ],
    }
    fix = {
        "target_path": f"{WORKSPACE}/pkg",
        "changed_files": [f"mod{n}.py" for n in range(97)],
        "backup_path": "/srv/devskyy/.devskyy/backups/8f3a-fix",
        "headline": "applied 9 fixes in 3 files, 0 left; backup /srv/devskyy/.devskyy/backups/8f3a",
    }
    result = {"scan": scan, "fix": fix, "errors": [], "status": "completed"}
    record = {"params": {"target_path": f"{WORKSPACE}/pkg"}, "steps": {"scan": {"output": scan}}}
    return {
        "run_id": "8f3a",
        "kind": "workflow",
        "status": "succeeded",
        "result": result,
        "record": record,
    }


def _best(work: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    shown = ShownPaths.of((Path(WORKSPACE), Path("/srv/more")))
    view = _view(args.issues)
    plain = shown.shown(view)  # the same view with nothing left to change
    answer = _best(
        lambda: json.dumps(RunView.model_validate(view).model_dump(mode="json")), args.repeat
    )
    encode = _best(lambda: json.dumps(view), args.repeat)
    rewrite = _best(lambda: shown.shown(view), args.repeat)
    untouched = _best(lambda: shown.shown(plain), args.repeat)
    size = len(json.dumps(view))
    print(f"run view: {args.issues} issues, {size / 1024:.0f} KiB of JSON")
    print(f"baseline: answer encoding     {answer * 1000:8.2f} ms")
    print(f"baseline: json.dumps alone    {encode * 1000:8.2f} ms")
    print(f"shown (paths to rewrite):     {rewrite * 1000:8.2f} ms  ({rewrite / answer:.2f}x)")
    print(f"shown (nothing to change):    {untouched * 1000:8.2f} ms  ({untouched / answer:.2f}x)")
    print("target: below 1.00x of the answer encoding:", "met" if rewrite < answer else "NOT met")


if __name__ == "__main__":
    main()
