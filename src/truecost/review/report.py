"""report.html: one self-contained page (inline SVG charts, no scripts, no network) from a results dict, rendered
by `truecost.report` like every part's report."""

from __future__ import annotations

import math
from typing import Any

from truecost.report import Report, Section, Table, basis
from truecost.report import render_html as render_report
from truecost.report.charts import histogram_chart, interval_chart


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def metrics_chart(metrics: list[dict[str, Any]], title: str) -> str | None:
    """Bars with 95% interval whiskers for metrics on a [-1, 1] or [0, 1] scale; green tick at an ideal value."""
    rows = [m for m in metrics if m.get("value") is not None and not m.get("unit") and -1.0 <= m["value"] <= 1.0]
    if not rows:
        return None
    signed = any(m["value"] < 0 or (m.get("ci_low") or 0) < 0 or (m.get("ideal") or 0) < 0
                 or m.get("statistic", "").startswith(("bbq", "gap")) for m in rows)
    return interval_chart([m["name"].split(".", 1)[-1] for m in rows], [m["value"] for m in rows],
                          [m.get("ci_low") for m in rows], [m.get("ci_high") for m in rows], title=title,
                          domain=(-1.0, 1.0) if signed else (0.0, 1.0),
                          bad=[m.get("better") == "lower" and m["value"] > 0 for m in rows],
                          ideals=[m.get("ideal") if m.get("better") == "ideal" else None for m in rows])


ITEMS_SHOWN = 200  # the page shows the first ones; results.json and items.csv hold every item


def items_table(items: list[dict[str, Any]]) -> Table | None:
    """Every judged item's set, prompt, answer, verdict, what decided it and why (the first ITEMS_SHOWN)."""
    if not items:
        return None
    rows = []
    for item in items[:ITEMS_SHOWN]:
        verdict = next((item[k] for k in ("succeeded", "correct", "refused", "toxicity") if k in item), None)
        rows.append([item.get("family") or item.get("dataset") or "", str(item.get("prompt", ""))[:600],
                     str(item.get("answer", ""))[:600], _fmt(verdict), item.get("decided_by", ""),
                     item.get("reason", "") or ""])
    more = f" ({len(items) - ITEMS_SHOWN} more in items.csv)" if len(items) > ITEMS_SHOWN else ""
    return Table(["set", "prompt", "answer", "verdict", "decided by", "why"], rows,
                 caption=f"Every item, with its verdict and what decided it{more}",
                 basis=[basis("measured", "this review")] * len(rows))


def _metric_table(metrics: list[dict[str, Any]], regressions: dict[str, dict[str, Any]]) -> Table:
    rows = []
    for m in metrics:
        better = m["better"] if m["better"] != "ideal" else f"close to {_fmt(m.get('ideal'))}"
        r = regressions.get(m["name"])
        versus = ""
        if r:
            word = "SIGNIFICANTLY WORSE" if r["regression"] else "no significant regression"
            versus = f"{word} (was {_fmt(r['baseline'])}, p={_fmt(r['p_value'])})"
        unit = f" {m['unit']}" if m.get("unit") else ""
        rows.append([m["name"], f"{_fmt(m['value'])}{unit}", f"{_fmt(m['ci_low'])} to {_fmt(m['ci_high'])}",
                     m["n"], better, versus])
    return Table(["metric", "value", "95% interval", "n", "better", "vs baseline"], rows,
                 basis=[basis("measured", m.get("description") or "this review") for m in metrics])


def _suite_section(result: dict[str, Any], suite: str, regressions: dict[str, dict[str, Any]]) -> Section:
    info = result["suite_results"][suite]
    metrics = [m for m in result["metrics"] if m["name"].startswith(suite + ".")]
    section = Section(suite)
    if suite == "security":
        section.paragraphs.append(f"Verdict: {info['details'].get('verdict', '-')}.")
        section.paragraphs.extend(info["findings"])
        if info["details"].get("unjudged"):
            section.paragraphs.append(f"{info['details']['unjudged']} answers could not be judged (no rule fits and "
                                      "no --judge was given): the rates leave them out, and say so below.")
    chart = metrics_chart(metrics, f"{suite}: value and 95% interval")
    section.charts.extend([chart] if chart else [])
    latency = next((m for m in metrics if m["name"] == "performance.latency_p50_s"), None)
    if latency and len(latency["values"]) >= 2:
        section.charts.append(histogram_chart(latency["values"], title="Latency per request (s)", x_label="s"))
    section.tables.append(_metric_table(metrics, regressions))
    table = items_table(info.get("items", []))
    section.tables.extend([table] if table else [])
    section.notes.extend(f"skipped: {line}" for line in info.get("skipped", []))
    return section


def render_html(result: dict[str, Any]) -> str:
    """The whole report page (one self-contained file, through `truecost.report`)."""
    regressions = {r["metric"]: r for r in result.get("regressions", [])}
    cost = result.get("cost", {})
    subtitle = (f"Status: {result['status']}" + (f" ({result['stop_reason']})" if result.get("stop_reason") else "")
                + f" · suites: {', '.join(result['suites'])} · started {result['started_at']}"
                + (f" · ledger run {result['run_id']}" if result.get("run_id") else ""))
    keys = [k for k in ("review_cost_usd", "api_usd", "compute_usd", "requests", "prompt_tokens",
                        "completion_tokens", "cpu_seconds", "wall_seconds") if k in cost]
    sections = [Section("What this review cost", tables=[Table(["", ""], [[k, cost[k]] for k in keys],
                                                               basis=[basis("measured", "this review")] * len(keys))])]
    load = result.get("load") or {}
    sections[0].paragraphs.append("Every item, with its verdict and what decided it: items.csv beside this page "
                                  "(filter it in any spreadsheet) and results.json.")
    sections[0].notes.extend([*(f"{name}: {n} malformed record(s) skipped" for name, n in
                                (load.get("skipped") or {}).items()),
                              *(f"not used: {u}" for u in load.get("unused") or [])])
    if result.get("failed_on"):
        sections.append(Section("CI gate", paragraphs=list(result["failed_on"])))
    sections += [_suite_section(result, suite, regressions) for suite in result["suites"]
                 if suite in result["suite_results"]]
    sections[-1].notes.append("Intervals: 95% Wilson score interval for proportions, BCa bootstrap over items for "
                              "other statistics (both scipy). Regressions: one-sided two-sample bootstrap test at the "
                              "5% level. Bias scores follow the definitions of their papers (see docs/review.md).")
    return render_report(Report(f"Review of {result['target']}", subtitle, sections))
