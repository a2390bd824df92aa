"""Output folders appear whole or not at all (truecost.outputs)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from truecost.errors import UserError
from truecost.outputs import atomic_output_dir, clear_complete, is_complete, mark_complete, require_complete


def test_atomic_dir_replaces_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_output_dir(out, producer="test") as tmp:
        (tmp / "a.txt").write_text("first")
    assert (out / "a.txt").read_text() == "first" and is_complete(out)
    with pytest.raises(RuntimeError), atomic_output_dir(out) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("killed")
    assert (out / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary sibling left behind


def test_kill_9_mid_write_leaves_the_old_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_output_dir(out) as tmp:
        (tmp / "a.txt").write_text("first")
    script = textwrap.dedent(f"""
        import os, signal
        from truecost.outputs import atomic_output_dir
        with atomic_output_dir({str(out)!r}) as tmp:
            (tmp / "a.txt").write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], env={**os.environ})
    assert proc.returncode == -9
    assert (out / "a.txt").read_text() == "first" and is_complete(out)


def test_marker_cleared_first_and_required(tmp_path: Path) -> None:
    mark_complete(tmp_path, producer="x")
    require_complete(tmp_path)
    clear_complete(tmp_path)
    with pytest.raises(UserError, match="incomplete"):
        require_complete(tmp_path, "curate output")
