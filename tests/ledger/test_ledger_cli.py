"""`truecost ledger ...` as a user runs it: bad URLs are one line and exit 2, tables fit 80 columns, `show`
lists the runs under a run, `reap` marks dead runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli import truecost
from truecost.ledger import Ledger


def truecost_at(columns: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "truecost", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def test_malformed_sqlite_url_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    result = truecost("--ledger", "sqlite:/nonexistent/x.db", "ledger", "list")
    assert result.returncode == 2 and result.stdout == ""
    assert "malformed" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "sqlite:").exists()


def test_unwritable_ledger_path_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    result = truecost("--ledger", f"sqlite:///{tmp_path / 'a-file' / 'x.db'}", "ledger", "list")
    assert result.returncode == 2 and "cannot create the database file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def _nested_ledger(tmp_path: Path) -> tuple[Ledger, str, str, str]:
    ledger = Ledger(f"sqlite:///{tmp_path / '.truecost' / 'ledger.db'}")
    with ledger.run("demo", "demo (tiny, seed 0)") as parent:
        with ledger.run("curate", "demo: curate the poorly prepared copy", parent_id=parent.id) as child:
            child.tokens = 123_456
        with ledger.run("train", "tiny"), ledger.run("review", "judge") as grandchild:  # review under train
            grandchild.tokens = 10
    return ledger, parent.id, child.id, grandchild.id


@pytest.mark.parametrize("columns", [80, 200])
def test_list_fits_the_terminal(tmp_path: Path, columns: int) -> None:
    _nested_ledger(tmp_path)
    result = truecost_at(columns, "ledger", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= columns for line in lines)
    assert "…" not in result.stdout
    for word in ("status", "completed", "demo", "curate", "123,456", "cost $"):
        assert word in result.stdout
    assert ("wall s" in result.stdout) == (columns >= 110)


def test_show_lists_children_and_totals(tmp_path: Path) -> None:
    ledger, parent_id, child_id, grandchild_id = _nested_ledger(tmp_path)
    shown = json.loads(truecost("ledger", "show", parent_id[:8], "--json").stdout)
    assert shown["id"] == parent_id and shown["name"] == "demo (tiny, seed 0)"
    assert [c["run"]["id"] for c in shown["children"]][0] == child_id
    assert shown["children"][1]["children"][0]["run"]["id"] == grandchild_id
    tree = ledger.tree(parent_id)
    assert shown["total_with_children"]["tokens"] == 123_466 == tree.total.tokens
    assert shown["total_with_children"]["cpu_seconds"] == pytest.approx(tree.total.cpu_seconds)
    human = truecost_at(80, "ledger", "show", parent_id)
    assert human.returncode == 0 and child_id[:8] in human.stdout and grandchild_id[:8] in human.stdout
    assert "3 run(s) under it" in human.stdout
    children = json.loads(truecost("ledger", "list", "--parent", parent_id[:8], "--json").stdout)
    assert {c["id"] for c in children} == {child_id, tree.children[1].run.id}


def test_reap_reports_what_it_marked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    gone = subprocess.Popen(["true"])
    gone.wait()
    quiet = Ledger(url, reap=False)  # (opening with reap=True would mark it lost already)
    orphan = quiet.start_run("train", "orphan", pid=gone.pid)  # its process has exited
    live = quiet.start_run("train", "this process")
    result = truecost("--ledger", url, "ledger", "reap", "--json")
    assert result.returncode == 0, result.stderr
    assert [run["id"] for run in json.loads(result.stdout)] == [orphan.id]
    assert quiet.get_run(orphan.id).status == "lost" and quiet.get_run(live.id).status == "running"
