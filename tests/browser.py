"""Open an HTML file in real headless Chromium and read back what the page's own check recorded."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# Flags that keep Chromium off the network (this machine has none) and quiet; see the env notes for why.
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--virtual-time-budget=3000"]


def chromium() -> str:
    """Path of the Chromium binary; skip locally (fail in CI, where .ci/run installs it) when missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; scripts/install-system.sh installs it")
        pytest.skip("chromium is not installed")
    return found


def body_attributes(html_file: Path) -> dict[str, str]:
    """Load the page, let its scripts run, and return the attributes of <body> from the live DOM."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run([chromium(), *_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                                 html_file.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    match = re.search(r"<body([^>]*)>", result.stdout)
    assert match, f"chromium returned no <body>: {result.stderr[-500:]}"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', match.group(1)))
