"""A ledger path that holds something else is refused in one line and left as it was.

The damaged schema version failed before this fix (`int('abc')` raised a ValueError traceback); the other cases
held up in the same audit and are kept here so they stay that way.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from truecost.errors import UserError
from truecost.ledger import Ledger


def _sqlite(path: Path, *statements: str) -> Path:
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement)
    return path


def test_what_is_not_a_ledger_is_refused_and_left_alone(tmp_path: Path) -> None:
    meta = "CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT)"
    damaged = _sqlite(tmp_path / "damaged.db", meta, "INSERT INTO ledger_meta VALUES ('schema_version', 'abc')")
    with pytest.raises(UserError, match="schema version 'abc' is not a number"):
        Ledger(f"sqlite:///{damaged}")
    future = _sqlite(tmp_path / "future.db", meta, "INSERT INTO ledger_meta VALUES ('schema_version', '99')")
    with pytest.raises(UserError, match="schema v99, newer than this truecost"):
        Ledger(f"sqlite:///{future}")
    text = tmp_path / "notes.db"
    text.write_text("not a database\n", encoding="utf-8")
    with pytest.raises(UserError, match="file is not a database"):
        Ledger(f"sqlite:///{text}")
    (tmp_path / "folder.db").mkdir()
    with pytest.raises(UserError, match="unable to open database file"):
        Ledger(f"sqlite:///{tmp_path / 'folder.db'}")
    # Someone else's table named `runs`: the failed migration rolls back and leaves it as it was.
    other = _sqlite(tmp_path / "other.db", "CREATE TABLE runs (a INTEGER, b TEXT)", "INSERT INTO runs VALUES (1, 'x')")
    with pytest.raises(UserError):
        Ledger(f"sqlite:///{other}")
    with sqlite3.connect(other) as db:
        assert db.execute("SELECT sql FROM sqlite_master").fetchall() == [("CREATE TABLE runs (a INTEGER, b TEXT)",)]
        assert db.execute("SELECT * FROM runs").fetchall() == [(1, "x")]
    assert text.read_text(encoding="utf-8") == "not a database\n"


def test_a_command_refuses_an_in_memory_ledger(tmp_path: Path) -> None:
    """Failed before this fix: `--ledger sqlite://` (or `:memory:`) ran every command against a database that
    vanished at exit, so each run it recorded was lost without a word."""
    import os
    import subprocess
    import sys

    for url in ("sqlite://", ":memory:"):
        result = subprocess.run([sys.executable, "-m", "truecost", "--ledger", url, "ledger", "list"],
                                capture_output=True, text=True, timeout=120, cwd=tmp_path,
                                env={**os.environ, "COLUMNS": "200"})
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert result.stderr.count("\n") == 1 and "in-memory database, which forgets every run" in result.stderr
    kept = Ledger("sqlite://")  # the Python API may still keep one in memory
    assert kept.in_memory and kept.count_runs() == 0 and not Ledger(f"sqlite:///{tmp_path / 'l.db'}").in_memory
