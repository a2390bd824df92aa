"""Every dollar figure of the monitor's decision says how it was obtained. Failed before this fix: the HTML report
labelled the expected loss "measured: this stream" although it is the measured quality drop times three assumed
inputs, called a retrain cost the user typed in "sourced", and `--json` gave neither figure a basis."""

from __future__ import annotations

import re

from truecost.monitor import run_monitor
from truecost.monitor.report import render_html


def _rows(n: int, quality: float) -> list[dict[str, object]]:
    return [{"prompt": f"How much water does a plant of kind {i % 7} need each day?", "quality": quality}
            for i in range(n)]


def test_dollar_figures_carry_their_basis() -> None:
    default = run_monitor(_rows(60, 1.0), _rows(40, 1.0), window=20).decision.to_dict()
    assert default["basis"]["expected_loss_usd"].startswith("assumed:")
    assert default["basis"]["retrain_cost_usd"].startswith("sourced: truecost.estimate")
    assert default["basis"]["value_of_quality_usd"].startswith("assumed:")
    mine = run_monitor(_rows(60, 1.0), _rows(40, 1.0), window=20, retrain_cost_usd=500.0)
    decision = mine.decision.to_dict()
    assert decision["basis"]["retrain_cost_usd"] == "assumed: [monitor] retrain_cost_usd"
    assert decision["economics"]["retrain_cost_reason"] == "[monitor] retrain_cost_usd"
    page = " ".join(re.sub(r"<[^>]+>", " ", render_html(mine)).split())  # the text a reader sees
    loss_row = page.split("expected loss $")[-1].split("retrain cost $", 1)[0]
    assert re.fullmatch(r" [\d.,]+ assumed the measured quality drop .*", loss_row), loss_row
    retrain_row = page.split("retrain cost $", 1)[1].split("quality drop", 1)[0]
    assert retrain_row.strip() == "500 assumed [monitor] retrain_cost_usd", retrain_row
