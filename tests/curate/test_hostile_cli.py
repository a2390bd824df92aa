"""Output folders and recipes a careless user gives `truecost curate`: each mistake is one line on stderr and
exit 2, and a folder another run is writing is never touched."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from tests.curate.test_curate_cli import truecost
from tests.curate.textgen import article


def _input(tmp_path: Path) -> Path:
    path = tmp_path / "in put é.jsonl"  # a space and a non-ASCII letter in the name
    path.write_text("".join(json.dumps({"id": t, "text": article(t)}) + "\n" for t in ("bridge", "museum")),
                    encoding="utf-8")
    return path


def test_an_output_under_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    """It was a NotADirectoryError traceback (exit 1)."""
    data, a_file = _input(tmp_path), tmp_path / "notes.txt"
    a_file.write_text("not a folder", encoding="utf-8")
    result = truecost("curate", str(data), "-o", str(a_file / "out"))
    assert result.returncode == 2, result.stderr[-500:]
    # Exactly one line: the progress bar, drawn nowhere off a terminal, left a blank line before the error.
    assert result.stderr.startswith("error: cannot create output folder") and result.stderr.count("\n") == 1


def test_a_folder_another_run_is_writing_is_refused_and_left_alone(tmp_path: Path) -> None:
    """Two runs into one folder deleted each other's work files (one crashed with a traceback, the other could
    mark a mix of both complete). Here the test holds the folder's lock as a running curate would."""
    data, out = _input(tmp_path), tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("the other run's", encoding="utf-8")
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = truecost("curate", str(data), "-o", str(out))
    finally:
        os.close(fd)
    assert result.returncode == 2, result.stderr[-500:]
    assert "another curate run" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert (out / "report.json").read_text(encoding="utf-8") == "the other run's"
    # Once the lock is released (the other run ended, even by kill -9), the same command runs.
    again = truecost("curate", str(data), "-o", str(out), "--json")
    assert again.returncode == 0, again.stderr[-500:]
    assert json.loads(again.stdout)["totals"]["docs_in"] == 2 and (out / "_COMPLETE").is_file()


@pytest.mark.parametrize(("recipe", "message"), [
    ("[near]\nthresold = 0.5\n", "unknown key"),  # a TypeError traceback once the near stage started
    ("[exact]\nfoo = 1\n", "exact dedup takes no parameters"),  # silently ignored
])
def test_a_mistyped_dedup_key_is_refused_before_the_run(tmp_path: Path, recipe: str, message: str) -> None:
    data, out = _input(tmp_path), tmp_path / "out"
    (tmp_path / "r.toml").write_text(recipe, encoding="utf-8")
    result = truecost("curate", str(data), "-o", str(out), "--recipe", str(tmp_path / "r.toml"))
    assert result.returncode == 2, result.stderr[-500:]
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_curating_an_output_back_into_its_own_folder_loses_nothing(tmp_path: Path) -> None:
    """`curate out/kept/x.jsonl -o out` cleared `out/kept` (a fresh run's first act) and so deleted its own input
    before reading it; an output inside an input folder is read back as input next time. Both are refused."""
    data, out = _input(tmp_path), tmp_path / "out"
    assert truecost("curate", str(data), "-o", str(out), "--steps", "exact").returncode == 0
    kept = out / "kept" / data.name
    before = kept.read_bytes()
    again = truecost("curate", str(kept), "-o", str(out), "--steps", "exact,near")
    assert again.returncode == 2 and "overlap" in again.stderr, again.stderr[-500:]
    assert kept.read_bytes() == before
    inside = truecost("curate", str(tmp_path), "-o", str(tmp_path / "curated"))
    assert inside.returncode == 2 and "overlap" in inside.stderr and not (tmp_path / "curated").exists()
