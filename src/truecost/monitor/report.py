"""The monitor's HTML report through `truecost.report`: one stacked chart of the three signals (alarm windows
shaded, alarm levels dashed), the decision with its dollars, and the windows."""

from __future__ import annotations

import math
from typing import Any

from truecost.monitor.monitor import MonitorResult
from truecost.report import Report, Section, Table, basis
from truecost.report import render_html as render_report
from truecost.report.charts import Panel, stacked_line_chart


def _series(windows: list[dict[str, Any]], signal: str, key: str) -> list[tuple[float, float]]:
    out = []
    for w in windows:
        value = w[signal].get(key)
        out.append((float(w["index"]), float(value) if isinstance(value, int | float) else math.nan))
    return out


def _signal_chart(result: MonitorResult) -> str:
    """Input drift (-log10 p), quality drift (CUSUM / threshold, window mean) and ops ratios, per window."""
    windows = [w.to_dict() for w in result.windows]
    p_values = [(float(w["index"]), -math.log10(max(float(w["input_drift"].get("p_value", 1.0)), 1e-300)))
                for w in windows]
    alpha = result.detectors.get("input_drift", {}).get("alpha", 0.05)
    level = -math.log10(alpha / max(len(windows), 1))

    def bands(signal: str) -> list[tuple[float, float]]:
        return [(w["index"] - 0.5, w["index"] + 0.5) for w in windows if w[signal]["alarm"]]

    panels = [
        Panel("input drift: -log10 p", {"prompts": p_values}, bands("input_drift"), [level]),
        Panel("quality drift: CUSUM / threshold", {"CUSUM": _series(windows, "quality_drift", "score"),
                                                   "window mean": _series(windows, "quality_drift", "window_mean")},
              bands("quality_drift"), [1.0]),
        Panel("ops drift: ratio to reference", {"latency p95": _series(windows, "ops_drift", "latency_p95_ratio"),
                                                "cost / request": _series(windows, "ops_drift", "cost_ratio")},
              bands("ops_drift"), [1.0]),
    ]
    return stacked_line_chart(panels, title="Signals per window (alarms shaded; dashed: alarm level or reference)",
                              x_label="window", width=760)


def _decision_table(result: MonitorResult) -> Table:
    decision = result.decision.to_dict()
    econ = decision["economics"]
    rows = [["action", decision["action"].upper()], ["why", decision["reason"]],
            ["expected loss $", decision["expected_loss_usd"]], ["retrain cost $", decision["retrain_cost_usd"]],
            ["quality drop", f"{decision['quality_drop']} ({decision['quality_source']})"],
            ["break-even drop", decision["break_even_quality_drop"]],
            ["first alarm window", decision["first_alarm_window"]],
            ["value of quality $/request", econ["value_of_quality_usd"]], ["horizon days", econ["horizon_days"]],
            ["traffic requests/day", econ["requests_per_day"]]]
    measured = basis("measured", "this stream")
    dollars = {key: basis(*text.split(": ", 1)) for key, text in decision["basis"].items()}
    bases = [measured, measured, dollars["expected_loss_usd"], dollars["retrain_cost_usd"],
             measured, measured, measured, dollars["value_of_quality_usd"],
             basis("assumed", econ["horizon_reason"]), basis("assumed", "[monitor] or [target] requests_per_day")]
    return Table(["", ""], rows, basis=bases)


def render_html(result: MonitorResult, title: str = "truecost monitor") -> str:
    """The report as one HTML string with no external resources."""
    rows = []
    for w in (w.to_dict() for w in result.windows):
        q = w["quality_drift"]
        rows.append([w["index"], w["n"], w["input_drift"].get("p_value", "-"),
                     "ALARM" if w["input_drift"]["alarm"] else "", q.get("window_mean", "-"), q.get("score", "-"),
                     "ALARM" if q["alarm"] else "", "ALARM" if w["ops_drift"]["alarm"] else ""])
    sections = [Section("Decision", tables=[_decision_table(result)]),
                Section("Signals", charts=[_signal_chart(result)]),
                Section("Windows", tables=[Table(["window", "n", "input p", "input", "quality mean", "CUSUM/h",
                                                  "quality", "ops"], rows)])]
    subtitle = (f"{len(result.windows)} windows against a reference of {result.reference_rows} rows; alarms are "
                "shaded red.")
    return render_report(Report(title, subtitle, sections))
