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
                             "--out", str(out), "--threads", "1", "--json"], capture_output=True, text=True,
                            timeout=1200, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, Path]:
    base = tmp_path_factory.mktemp("demo")
    return _run_demo(base / "seed0", 0, base), _run_demo(base / "seed1", 1, base), base


def test_demo_json_and_report_files(two_runs) -> None:
    first, _, _ = two_runs
    for key in ("report_html", "report_json", "measured", "extrapolated", "timings", "ledger_run_id"):
        assert key in first
    html, data = Path(first["report_html"]), json.loads(Path(first["report_json"]).read_text())
    assert html.exists() and data["measured"]["curate"]["docs_in"] == first["measured"]["curate"]["docs_in"]
    cur = first["measured"]["curate"]
    # Curation removed what was injected while losing almost no real document.
    assert cur["copies_injected"] > 0 and cur["copies_left"] <= 0.1 * cur["copies_injected"]
    assert cur["junk_removed"] >= 0.9 * cur["junk_injected"] > 0
    assert cur["pii_left"] == 0 and cur["mojibake_left"] == 0
    assert cur["content_lost_share"] <= 0.05
    # Both arms trained the same token budget; each eval curve starts at the shared base model.
    poor, well = first["measured"]["training"]["poor"], first["measured"]["training"]["well"]
    assert poor["tokens"] == well["tokens"] > 0
    assert poor["curve"][0] == well["curve"][0] and len(poor["curve"]) == len(well["curve"]) >= 2


def test_headline_and_effects_have_the_promised_shape(two_runs) -> None:
    first, _, _ = two_runs
    head = first["headline"]
    assert set(head["by_basis"]) == {"measured", "sourced", "assumed"}
    assert sum(head["by_basis"].values()) == pytest.approx(head["difference_usd"], rel=1e-6, abs=0.01)
    effects = first["effects"]
    for name in ("heldout_loss", "compute_ratio_same_loss", "generation_any_rate", "review_accuracy",
                 "routing_saving_at_strong_quality"):
        e = effects[name]
        assert {"poor", "well", "ci_low", "ci_high", "n_seeds", "n_items", "model", "interval_over"} <= set(e)
        assert e["n_items"] > 0 and e["interval_over"]
    loss = effects["heldout_loss"]
    assert loss["ci_low"] <= loss["poor"] - loss["well"] <= loss["ci_high"]


def test_measured_inputs_name_this_demos_runs(two_runs) -> None:
    first, _, _ = two_runs
    lines = [line for line in first["tco"]["lines"] if line["basis"] == "measured"]
    names = {line["input"] for line in lines}
    assert {"duplicate_share", "bad_output_ratio", "routing_saving_share"} <= names
    assert all(line["run_ids"] for line in lines)
    # The transfer rule: the models' reviews carry their ratio; the plan's base rate is not the tiny model's.
    lines_by = {(line["input"], line["arm"]): line for line in first["tco"]["lines"]}
    assert lines_by[("bad_output_rate", "well")]["basis"] == "assumed"
    ratio = first["effects"]["bad_output_ratio"]
    # (the ledger's review rates are rounded to 6 decimals, so the ratio rebuilt from them differs in the 6th digit)
    assert lines_by[("bad_output_ratio", "poor")]["value"] == pytest.approx(ratio["poor"], rel=1e-4)
    # No assumption tells the projects apart: the whole headline is measured (the demo turns no lever on).
    head = first["headline"]
    assert head["by_basis"]["assumed"] == pytest.approx(0.0, abs=0.01)
    assert head["by_basis"]["measured"] == pytest.approx(head["difference_usd"], abs=0.05)
    assert first["tco"]["optional_levers"]


def test_every_figure_has_a_basis(two_runs) -> None:
    first, _, _ = two_runs
    report = json.loads(Path(first["report_json"]).read_text())["report"]
    for section in report["sections"]:
        for table in section["tables"]:
            if table["basis"] is None:
                continue
            assert len(table["basis"]) == len(table["rows"])
            assert all(b.split(":")[0] in ("measured", "sourced", "assumed") for b in table["basis"])


def test_report_renders_in_chromium(two_runs) -> None:
    first, _, _ = two_runs
    attrs = body_attributes(Path(first["report_html"]))
    assert attrs["data-errors"] == "0"
    assert int(attrs["data-charts-total"]) >= 5 and attrs["data-charts-rendered"] == attrs["data-charts-total"]


def test_another_seed_changes_numbers_not_structure(two_runs) -> None:
    first, second, _ = two_runs
    assert first["effects"]["heldout_loss"]["well"] != second["effects"]["heldout_loss"]["well"]
    first_report = json.loads(Path(first["report_json"]).read_text())["report"]
    second_report = json.loads(Path(second["report_json"]).read_text())["report"]
    assert [s["title"] for s in first_report["sections"]] == [s["title"] for s in second_report["sections"]]


def test_everything_is_in_the_ledger_under_the_demo(two_runs) -> None:
    first, _, base = two_runs
    ledger = Ledger(f"sqlite:///{base / '.truecost' / 'ledger.db'}")
    runs = ledger.list_runs()
    demo_run = ledger.get_run(first["ledger_run_id"])
    assert demo_run.status == "completed" and demo_run.cpu_seconds > 0
    by_id = {r.id: r for r in runs}

    def under_demo(run) -> bool:
        while run.parent_id:
            if run.parent_id == demo_run.id:
                return True
            run = by_id[run.parent_id]
        return False

    kinds = {r.kind for r in runs if under_demo(r)}
    assert {"curate", "train", "route", "monitor", "review"} <= kinds
    # No lever of the demo carries an assumed saving.
    assert not demo_run.results.get("levers")
