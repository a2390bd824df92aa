"""The demo end to end, as a user runs it: real curate, train, route, monitor, review; report in Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import body_attributes
from truecost.ledger import Ledger

pytestmark = pytest.mark.slow


def _run_demo(out: Path, seed: int, cwd: Path) -> dict:
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", "truecost", "demo", "--scale", "tiny", "--seed", str(seed),
                             "--out", str(out), "--json"], capture_output=True, text=True, timeout=1200, env=env,
                            cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, Path]:
    base = tmp_path_factory.mktemp("demo")
    return _run_demo(base / "seed0", 0, base), _run_demo(base / "seed1", 1, base), base


def test_demo_json_and_report_files(two_runs) -> None:
    first, _, _ = two_runs
    for key in ("report_html", "report_json", "measured", "extrapolated"):
        assert key in first
    html, data = Path(first["report_html"]), json.loads(Path(first["report_json"]).read_text())
    assert html.exists() and data["measured"]["curate"]["docs_in"] == first["measured"]["curate"]["docs_in"]
    measured = first["measured"]
    # Curation removed what was injected: almost every duplicate copy and junk document, all PII and mojibake,
    # while most real documents survive.
    cur = measured["curate"]
    assert cur["copies_injected"] > 0 and cur["copies_left"] <= 0.1 * cur["copies_injected"]
    assert cur["junk_removed"] >= 0.9 * cur["junk_injected"] > 0
    assert cur["pii_left"] == 0 and cur["mojibake_left"] == 0
    assert cur["boilerplate_left"] <= 0.1 * 2 * measured["corpus"]["defects_injected"]["boilerplate"]
    assert cur["content_docs_lost"] <= 0.25 * cur["content_docs"]
    # Both training runs had the same token budget and were measured on the same held-out text.
    poor, clean = measured["training"]["poor"], measured["training"]["clean"]
    assert poor["tokens"] == clean["tokens"] > 0
    assert 0 < clean["heldout_loss"] < 20 and 0 < poor["heldout_loss"] < 20
    ext = first["extrapolated"]
    assert ext["tco"]["poor"]["total_usd"] > ext["tco"]["well"]["total_usd"] > 0
    assert 0 < ext["measured_token_share_removed"] < 1


def test_every_figure_says_measured_or_extrapolated(two_runs) -> None:
    first, _, _ = two_runs
    report = json.loads(Path(first["report_json"]).read_text())["report"]
    for section in report["sections"]:
        for table in section["tables"]:
            assert table["basis"] is not None and len(table["basis"]) == len(table["rows"])
            assert all(b.split(":")[0] in ("measured", "extrapolated", "assumed") for b in table["basis"])


def test_report_renders_in_chromium(two_runs) -> None:
    first, _, _ = two_runs
    attrs = body_attributes(Path(first["report_html"]))
    assert attrs["data-errors"] == "0"
    assert int(attrs["data-charts-total"]) >= 5 and attrs["data-charts-rendered"] == attrs["data-charts-total"]


def test_another_seed_changes_numbers_not_structure(two_runs) -> None:
    first, second, _ = two_runs
    assert first["measured"]["training"]["clean"]["heldout_loss"] != second["measured"]["training"]["clean"][
        "heldout_loss"]
    first_report = json.loads(Path(first["report_json"]).read_text())["report"]
    second_report = json.loads(Path(second["report_json"]).read_text())["report"]
    assert [s["title"] for s in first_report["sections"]] == [s["title"] for s in second_report["sections"]]


def test_everything_is_in_the_ledger(two_runs) -> None:
    first, _, base = two_runs
    ledger = Ledger(f"sqlite:///{base / '.truecost' / 'ledger.db'}")
    runs = ledger.list_runs()
    kinds = {r.kind for r in runs}
    assert {"demo", "curate", "train", "route", "monitor", "review"} <= kinds
    demo_run = ledger.get_run(first["ledger_run_id"])
    assert demo_run.status == "completed" and demo_run.cpu_seconds > 0
    children = [r for r in runs if r.parent_id == demo_run.id]
    assert {"curate", "train", "route"} <= {r.kind for r in children}
