"""Reports: charts are well-formed SVG, the page renders in a real browser, and the ledger report adds up."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.browser import body_attributes
from truecost.ledger import Ledger, RequestRecord
from truecost.report import Report, Section, Table, write_report
from truecost.report.charts import bar_chart, grouped_bar_chart, line_chart
from truecost.report.ledger_report import ledger_report, summarise


def test_charts_are_valid_svg_with_one_mark_per_value() -> None:
    svg = bar_chart(["a", "b", "c"], [1.0, 2.0, 0.5], title="t & <x>")
    root = ET.fromstring(svg)
    rects = root.findall("{http://www.w3.org/2000/svg}rect")
    assert len(rects) == 3
    widths = [float(r.get("width")) for r in rects]
    assert widths[1] == max(widths) and widths[1] == pytest.approx(4 * widths[2])
    grouped = ET.fromstring(grouped_bar_chart(["x", "y"], {"poor": [2, 4], "well": [1, 2]}, title="g"))
    assert len(grouped.findall("{http://www.w3.org/2000/svg}rect")) == 2 + 4  # legend swatches + bars
    line = ET.fromstring(line_chart({"s": [(0, 0), (1, 1), (2, 4)]}, title="l", markers=[1]))
    assert len(line.findall("{http://www.w3.org/2000/svg}polyline")) == 1
    with pytest.raises(ValueError):
        bar_chart(["a"], [1, 2], title="bad")


def _sample_report(extra_chart: str = "") -> Report:
    charts = [bar_chart(["a", "b"], [1, 2], title="bars"), line_chart({"s": [(0, 1), (1, 2)]}, title="line")]
    if extra_chart:
        charts.append(extra_chart)
    return Report("Sample", "for the browser", [Section("One", ["text"], [Table(["k", "v"], [["x", 1.5]],
                                                                               basis=["measured: here"])], charts)])


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    html_path, json_path = write_report(_sample_report(), tmp_path)
    attrs = body_attributes(html_path)
    assert attrs["data-errors"] == "0"
    assert attrs["data-charts-total"] == "2" and attrs["data-charts-rendered"] == "2"
    assert json.loads(json_path.read_text())["report"]["title"] == "Sample"


def test_browser_check_catches_a_broken_chart(tmp_path: Path) -> None:
    html_path, _ = write_report(_sample_report('<svg class="tc-chart" width="0" height="0"></svg>'), tmp_path)
    attrs = body_attributes(html_path)
    assert attrs["data-charts-total"] == "3" and attrs["data-charts-rendered"] == "2"


def test_ledger_report_sums_what_was_recorded(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    for kind, cost in (("curate", 0.25), ("train", 1.0), ("train", 2.0)):
        run = ledger.start_run(kind, kind)
        run.cost_usd = cost
        run.results = {"levers": [{"name": "dedup", "saving_usd": 10.0, "basis": "measured"},
                                  {"name": "tco", "saving_usd": 5000.0, "basis": "assumed"},
                                  {"name": "old", "saving_usd": 7.0}]} if kind == "curate" else {}
        ledger.finish_run(run)
    for model, cost in (("small", 0.001), ("big", 0.01), ("small", 0.002)):
        ledger.log_request(RequestRecord(timestamp=datetime.now(UTC), model=model, cost_usd=cost, prompt_tokens=5))
    summary = summarise(ledger.list_runs(), ledger.list_requests())
    assert summary["total_cost_usd"] == pytest.approx(3.25)
    assert summary["by_kind"]["train"]["runs"] == 2 and summary["by_kind"]["train"]["cost_usd"] == pytest.approx(3.0)
    assert summary["by_model"]["small"]["cost_usd"] == pytest.approx(0.003)
    # Only the measured saving is added up; the assumed one and the one without a basis are listed apart.
    assert summary["savings_by_lever_usd"] == {"dedup": 10.0} and summary["measured_savings_usd"] == 10.0
    assert sorted((lever["name"], lever["basis"]) for lever in summary["levers"]) == [
        ("dedup", "measured"), ("old", "unstated"), ("tco", "assumed")]
    report, _ = ledger_report(ledger)
    assert "every figure here was measured" not in report.subtitle.lower()
    html_path, _ = write_report(report, tmp_path / "out")
    attrs = body_attributes(html_path)
    assert attrs["data-errors"] == "0" and attrs["data-charts-rendered"] == attrs["data-charts-total"] != "0"


def test_report_cli_on_empty_ledger(tmp_path: Path) -> None:
    from tests.cli.test_cli import truecost

    result = truecost("report", "--out", str(tmp_path / "r"), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert Path(data["report_html"]).exists() and data["summary"]["runs"] == 0
