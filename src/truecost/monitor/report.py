"""A self-contained HTML report: one time-series chart per signal (inline SVG), the alarms, and the decision."""

from __future__ import annotations

import html
import io
from typing import Any

from truecost.monitor.monitor import MonitorResult


def _svg_charts(result: MonitorResult) -> str:
    """Three stacked charts (input p-value, quality CUSUM, ops ratios) with alarm windows shaded, as SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    windows = [w.to_dict() for w in result.windows]
    index = np.array([w["index"] for w in windows])
    fig, axes = plt.subplots(3, 1, figsize=(9, 7.5), sharex=True)
    panels: list[tuple[str, list[tuple[str, list[float]]], str, float | None]] = [
        ("input drift: -log10 p", [("prompts", [-np.log10(max(w["input_drift"].get("p_value", 1.0), 1e-300))
                                                for w in windows])], "input_drift", None),
        ("quality drift: CUSUM / threshold", [("CUSUM", [w["quality_drift"].get("score", 0.0) for w in windows]),
                                              ("window mean", [w["quality_drift"].get("window_mean") or np.nan
                                                               for w in windows])], "quality_drift", 1.0),
        ("ops drift: ratio to reference", [("latency p95", [w["ops_drift"].get("latency_p95_ratio", np.nan)
                                                            for w in windows]),
                                           ("cost / request", [w["ops_drift"].get("cost_ratio", np.nan)
                                                               for w in windows])], "ops_drift", 1.0),
    ]
    threshold = -np.log10(result.detectors.get("input_drift", {}).get("alpha", 0.05) / max(len(windows), 1))
    for ax, (title, series, signal, line) in zip(axes, panels, strict=True):
        for name, values in series:
            ax.plot(index, values, marker="o", markersize=3, label=name)
        level = threshold if signal == "input_drift" else line
        if level is not None:
            ax.axhline(level, color="grey", linestyle="--", linewidth=1,
                       label="reference" if signal == "ops_drift" else "alarm level")
        if all(np.isnan(np.asarray(values, dtype=float)).all() for _, values in series):
            ax.text(0.5, 0.5, "no data for this signal", transform=ax.transAxes, ha="center", color="grey")
        for w in windows:
            if w[signal]["alarm"]:
                ax.axvspan(w["index"] - 0.5, w["index"] + 0.5, color="red", alpha=0.15, linewidth=0)
        ax.set_title(title, fontsize=10, loc="left")
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("window")
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _row(cells: list[Any], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"


def render_html(result: MonitorResult, title: str = "truecost monitor") -> str:
    """The report as one HTML string with no external resources."""
    decision = result.decision.to_dict()
    econ = decision["economics"]
    rows = [_row(["window", "n", "input p", "input", "quality mean", "CUSUM/h", "quality", "ops"], "th")]
    for w in (w.to_dict() for w in result.windows):
        q = w["quality_drift"]
        rows.append(_row([w["index"], w["n"], w["input_drift"].get("p_value", "-"),
                          "ALARM" if w["input_drift"]["alarm"] else "", q.get("window_mean", "-"),
                          q.get("score", "-"), "ALARM" if q["alarm"] else "",
                          "ALARM" if w["ops_drift"]["alarm"] else ""]))
    facts = [
        ("action", decision["action"].upper()), ("why", decision["reason"]),
        ("expected loss", f"${decision['expected_loss_usd']:,.2f}"),
        ("retrain cost", f"${decision['retrain_cost_usd']:,.2f}"),
        ("quality drop", f"{decision['quality_drop']} ({decision['quality_source']})"),
        ("break-even drop", decision["break_even_quality_drop"]),
        ("first alarm window", decision["first_alarm_window"]),
        ("value of quality", f"${econ['value_of_quality_usd']:.6f}/request: {econ['value_reason']}"),
        ("horizon", f"{econ['horizon_days']:.1f} days: {econ['horizon_reason']}"),
        ("traffic", f"{econ['requests_per_day']:,.0f} requests/day"),
    ]
    fact_rows = "".join(_row([k, v]) for k, v in facts)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}}
th{{background:#f3f3f3}}.decision td:first-child{{font-weight:bold}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{len(result.windows)} windows against a reference of {result.reference_rows} rows; alarms are shaded red.</p>
<h2>Decision</h2><table class="decision">{fact_rows}</table>
<h2>Signals</h2>{_svg_charts(result)}
<h2>Windows</h2><table>{''.join(rows)}</table>
</body></html>
"""
