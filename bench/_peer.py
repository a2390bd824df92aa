"""The peer tool's own virtual environment for a benchmark: created on first use, reused after."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def peer_python(venv: Path, packages: list[str], probe_code: str) -> Path:
    """The interpreter of `venv`, (re)creating it with `packages` unless `probe_code` already runs there."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", probe_code]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"creating {venv} with {' '.join(packages)} (one time, a few minutes)", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    subprocess.run(probe, check=True)
    return python
