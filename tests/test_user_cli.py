"""Found by using devskyy as a platform engineer would (helper H8): CLI edge cases."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from devskyy.cli import main


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_plan_usage_error_exits_1_not_2_changes_pending(tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    code, out, err = _cli("--state", state, "plan", "--detailed-exitcode", "--bogus")
    assert (code, out) == (1, "")
    assert err.endswith("Error: No such option '--bogus'.\n")
    code, _, err = _cli("--state", state, "plan", "a", "b", "--detailed-exitcode")
    assert code == 1
    assert err.endswith("Error: Got unexpected extra argument (b)\n")
    code, _, err = _cli("--state", state, "plan", "-o", "wide", "--detailed-exitcode")
    assert code == 1
    assert "'wide' is not one of 'table', 'json'" in err
    assert not (tmp_path / "state.db").exists()
