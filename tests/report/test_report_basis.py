"""`truecost report` never says every figure was measured when it carries the cost of ownership, whose inputs are
mostly sourced or assumed. Failed before this fix: the subtitle said "Every figure here was measured" above a TCO
headline that the report itself split as $0 measured and the rest assumed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from truecost.ledger import Ledger
from truecost.report.ledger_report import ledger_report


def test_the_subtitle_names_the_estimates_the_tco_adds(tmp_path: Path) -> None:
    ledger = Ledger()
    run = ledger.start_run("monitor", "m")
    run.cost_usd, run.cpu_seconds = 0.01, 2.0
    ledger.finish_run(run)
    alone, _ = ledger_report(ledger)
    assert "Every figure here was measured" in alone.subtitle  # spend only: true
    result = subprocess.run([sys.executable, "-m", "truecost", "report", "-o", "out", "--json"], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "COLUMNS": "200"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tco"] is not None
    saved = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    bases = {cell for section in saved["report"]["sections"] for table in section["tables"]
             for cell in table["basis"] or []}
    assert any(b.startswith("assumed") for b in bases)  # the TCO's inputs really are not all measured
    subtitle = saved["report"]["subtitle"]
    assert "Every figure here was measured" not in subtitle and "sourced and assumed" in subtitle
    assert "also rests on sourced and assumed inputs" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")


def test_a_malformed_lever_is_left_out_and_named_not_fatal(tmp_path: Path) -> None:
    """Failed before this fix: one run whose lever saving was text stopped every report with a ValueError
    traceback, and a NaN saving made the measured total NaN."""
    from truecost.report import write_report
    from truecost.report.ledger_report import summarise

    ledger = Ledger()
    for name, saving in (("dedup", 10.0), ("typo", "lots"), ("broken", float("nan")), ("endless", float("inf"))):
        run = ledger.start_run("other", name)
        run.results = {"levers": [{"name": name, "saving_usd": saving, "basis": "measured"}]}
        ledger.finish_run(run)
    summary = summarise(ledger.list_runs(), [])
    assert summary["measured_savings_usd"] == 10.0 and [lever["name"] for lever in summary["levers"]] == ["dedup"]
    assert sorted(i["name"] for i in summary["ignored_levers"]) == ["broken", "endless", "typo"]
    report, _ = ledger_report(ledger)
    html_path, json_path = write_report(report, tmp_path / "out")
    text = html_path.read_text(encoding="utf-8")
    assert "typo from run" in text and "not a finite number" in text
    assert "NaN" not in json_path.read_text(encoding="utf-8")  # no total turned into NaN
