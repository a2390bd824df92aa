"""A newcomer's first hour (issue 18): what they type and read must say what it means."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def truecost(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "truecost", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**os.environ, "COLUMNS": "120", **(env or {})})


def test_error_messages_keep_their_brackets(tmp_path: Path) -> None:
    """Rich read `[[gpus]]` and `[estimate.tco]` in messages as style tags and dropped them."""
    result = truecost("estimate", "train", "--gpu", "Z9", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "add a [[gpus]] row in truecost.toml" in result.stderr, result.stderr
    (tmp_path / "truecost.toml").write_text('[estimate.tco]\n"[weird]" = 1\n')
    result = truecost("estimate", "tco", cwd=tmp_path)
    assert result.returncode == 2 and "'[weird]'" in result.stderr, result.stderr


def test_on_off_flags_show_no_type_in_help(tmp_path: Path) -> None:
    result = truecost("curate", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "--dry-run" in result.stdout
    assert "<bool>" not in result.stdout


def test_building_the_package_prints_no_deprecation(tmp_path: Path) -> None:
    """setuptools warned three times that the `project.license` table form is deprecated."""
    root, copy = Path(__file__).resolve().parents[2], tmp_path / "project"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, copy / name)
    shutil.copytree(root / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    result = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir",
                             str(tmp_path / "dist"), str(copy)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "project.license" not in result.stdout + result.stderr
