"""The `truecost` program as a user runs it: a real subprocess, stdout/stderr and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from truecost.ledger import Ledger


def truecost(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}  # wide enough that Rich tables do not wrap cells
    return subprocess.run([sys.executable, "-m", "truecost", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=env)


def test_help_lists_every_group() -> None:
    result = truecost("--help")
    assert result.returncode == 0
    for group in ("estimate", "curate", "train", "tune", "route", "gateway", "review", "monitor", "ledger",
                  "report", "demo"):
        assert group in result.stdout


def test_ledger_list_json_on_empty_ledger_prints_empty_list(tmp_path: Path) -> None:
    result = truecost("ledger", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert (tmp_path / ".truecost" / "ledger.db").exists()


def test_ledger_list_show_export(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / '.truecost' / 'ledger.db'}")
    with ledger.run("curate", "corpus-a") as run:
        run.tokens = 99
    listed = json.loads(truecost("ledger", "list", "--json").stdout)
    assert [r["id"] for r in listed] == [run.id]
    shown = json.loads(truecost("ledger", "show", run.id[:6], "--json").stdout)
    assert shown["name"] == "corpus-a" and shown["tokens"] == 99
    out = tmp_path / "runs.csv"
    result = truecost("ledger", "export", "--format", "csv", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert run.id in out.read_text()
    human = truecost("ledger", "list")
    assert "corpus-a" in human.stdout


def test_ledger_option_and_env_choose_the_database(tmp_path: Path) -> None:
    other = tmp_path / "team.db"
    Ledger(f"sqlite:///{other}").start_run("train", "elsewhere")
    via_option = json.loads(truecost("--ledger", str(other), "ledger", "list", "--json").stdout)
    assert [r["name"] for r in via_option] == ["elsewhere"]
    assert json.loads(truecost("ledger", "list", "--json").stdout) == []


@pytest.mark.parametrize("args, fragment", [
    (["--ledger", "mysql://u@h/db", "ledger", "list"], "only sqlite and postgresql"),
    (["ledger", "show", "nope"], "no run 'nope'"),
    (["ledger", "list", "--kind", "bogus"], "unknown kind 'bogus'"),
    (["ledger", "export", "--format", "xml"], "unknown format 'xml'"),
    (["--config", "missing.toml", "estimate"], "does not exist"),
])
def test_user_mistakes_are_one_line_and_exit_2(args: list[str], fragment: str) -> None:
    result = truecost(*args)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_debug_shows_the_traceback() -> None:
    result = truecost("--debug", "ledger", "show", "nope")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_bad_config_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "truecost.toml").write_text('[hardware]\npue = 0.5\n[target]\nmethod = "dora"\n')
    result = truecost("estimate")
    assert result.returncode == 2
    assert "hardware.pue" in result.stderr and "target.method" in result.stderr


def test_estimate_json_is_pure_json() -> None:
    result = truecost("estimate", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["cost_usd"]["p50"] > 0  # p10/p50/p90 since the calibrated estimate (issue 3)
