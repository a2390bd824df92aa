"""Open an HTML file in real headless Chromium and read back what a check script injected into a copy recorded.

Reports carry no scripts of their own; the check is added here, first thing in <head>, so it sees every script
error, console.error call and failed resource load of the page, and counts the charts that drew a visible box.
"""

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


_CHECK = """<script>
  window.__tcErrors = [];
  window.addEventListener("error", function (e) {
    window.__tcErrors.push(String(e.message || (e.target && (e.target.src || e.target.href)) || "error"));
  }, true);
  var tcConsoleError = console.error;
  console.error = function () {
    window.__tcErrors.push(Array.from(arguments).join(" "));
    tcConsoleError.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    var charts = document.querySelectorAll("svg.tc-chart"), ok = 0;
    charts.forEach(function (c) {
      var b = c.getBBox();
      if (b.width > 0 && b.height > 0 && c.childElementCount > 1) ok++;
    });
    document.body.setAttribute("data-charts-found", String(charts.length));
    document.body.setAttribute("data-charts-rendered", String(ok));
    document.body.setAttribute("data-errors", String(window.__tcErrors.length));
    document.body.setAttribute("data-error-text", window.__tcErrors.join(" | ").slice(0, 300));
  });
</script>"""


def body_attributes(html_file: Path) -> dict[str, str]:
    """Load a copy of the page with the check script, let it run, and return <body>'s attributes from the DOM."""
    page = html_file.read_text(encoding="utf-8")
    head = re.search(r"<head[^>]*>", page, flags=re.IGNORECASE)
    at = head.end() if head else 0
    with tempfile.TemporaryDirectory() as profile:
        checked = Path(profile) / f"checked-{html_file.name}"
        checked.write_text(page[:at] + _CHECK + page[at:], encoding="utf-8")
        result = subprocess.run([chromium(), *_FLAGS, f"--user-data-dir={profile}/chrome", "--dump-dom",
                                 checked.as_uri()], capture_output=True, text=True, timeout=120)
    match = re.search(r"<body([^>]*)>", result.stdout)
    assert match, f"chromium returned no <body>: {result.stderr[-500:]}"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', match.group(1)))
