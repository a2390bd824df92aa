"""report.html: one self-contained page (inline SVG charts, no scripts, no network) from a results dict."""

from __future__ import annotations

import html
import math
from typing import Any

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.25rem .5rem;
border-bottom:1px solid #eee}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020;font-weight:600}.ok{color:#2e7d32;font-weight:600}.note{color:#666;font-size:.85rem}
pre{white-space:pre-wrap;background:#f7f7f7;padding:.5rem;font-size:.8rem}
"""


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def bar_chart_svg(metrics: list[dict[str, Any]], width: int = 640) -> str:
    """Horizontal bars with 95% interval whiskers for metrics on a [-1, 1] or [0, 1] scale; ideal as a tick."""
    rows = [m for m in metrics if m.get("value") is not None and not m.get("unit") and -1.0 <= m["value"] <= 1.0]
    if not rows:
        return ""
    low_end = -1.0 if any(m["value"] < 0 or (m.get("ci_low") or 0) < 0 or (m.get("ideal") or 0) < 0
                          or m.get("statistic", "").startswith(("bbq", "gap")) for m in rows) else 0.0
    label_w, bar_w, row_h = 300, width - 340, 22
    height = row_h * len(rows) + 30

    def x(v: float) -> float:
        return label_w + (min(max(v, low_end), 1.0) - low_end) / (1.0 - low_end) * bar_w

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="metrics with 95% intervals" font-size="11" font-family="sans-serif">']
    for tick in ([-1.0, -0.5, 0.0, 0.5, 1.0] if low_end < 0 else [0.0, 0.25, 0.5, 0.75, 1.0]):
        parts.append(f'<line x1="{x(tick):.1f}" y1="5" x2="{x(tick):.1f}" y2="{height - 20}" stroke="#ddd"/>'
                     f'<text x="{x(tick):.1f}" y="{height - 6}" text-anchor="middle" fill="#666">{tick:g}</text>')
    for i, m in enumerate(rows):
        y = 8 + i * row_h
        name = html.escape(m["name"].split(".", 1)[-1])
        colour = "#c62828" if m.get("better") == "lower" and m["value"] > 0 else "#1565c0"
        start, end = sorted((x(0.0), x(m["value"])))
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{name}</text>')
        parts.append(f'<rect x="{start:.1f}" y="{y + 3}" width="{max(end - start, 1):.1f}" height="{row_h - 8}" '
                     f'fill="{colour}" opacity="0.75"/>')
        if m.get("ci_low") is not None and m.get("ci_high") is not None:
            lo, hi = x(m["ci_low"]), x(m["ci_high"])
            mid = y + row_h / 2
            parts.append(f'<line x1="{lo:.1f}" y1="{mid:.1f}" x2="{hi:.1f}" y2="{mid:.1f}" stroke="#222"/>'
                         f'<line x1="{lo:.1f}" y1="{mid - 4:.1f}" x2="{lo:.1f}" y2="{mid + 4:.1f}" stroke="#222"/>'
                         f'<line x1="{hi:.1f}" y1="{mid - 4:.1f}" x2="{hi:.1f}" y2="{mid + 4:.1f}" stroke="#222"/>')
        if m.get("ideal") is not None and m.get("better") == "ideal":
            xi = x(m["ideal"])
            parts.append(f'<line x1="{xi:.1f}" y1="{y + 1}" x2="{xi:.1f}" y2="{y + row_h - 3}" stroke="#2e7d32" '
                         f'stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(values: list[float], label: str, width: int = 640, bins: int = 20) -> str:
    """A small histogram (e.g. per-request latency) as inline SVG."""
    finite = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if len(finite) < 2:
        return ""
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    counts = [0] * bins
    for v in finite:
        counts[min(bins - 1, int((v - low) / span * bins))] += 1
    height, top, bottom, left = 140, 10, 30, 40
    bar_w = (width - left - 10) / bins
    peak = max(counts)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(label)} histogram" font-size="11" font-family="sans-serif">']
    for i, c in enumerate(counts):
        h = (height - top - bottom) * c / peak
        parts.append(f'<rect x="{left + i * bar_w:.1f}" y="{height - bottom - h:.1f}" width="{bar_w - 1:.1f}" '
                     f'height="{h:.1f}" fill="#1565c0" opacity="0.75"><title>{c}</title></rect>')
    parts.append(f'<text x="{left}" y="{height - 12}" fill="#666">{low:.3g}</text>'
                 f'<text x="{width - 10}" y="{height - 12}" text-anchor="end" fill="#666">{high:.3g}</text>'
                 f'<text x="{(left + width) / 2:.0f}" y="{height - 12}" text-anchor="middle">'
                 f'{html.escape(label)}</text><text x="4" y="{top + 10}" fill="#666">{peak}</text></svg>')
    return "".join(parts)


def _items_table(items: list[dict[str, Any]], limit: int = 200) -> str:
    """The first `limit` judged items (all of them are in results.json and items.csv): what was sent, what came back,
    the verdict and what decided it."""
    if not items:
        return ""
    rows = []
    for item in items[:limit]:
        verdict = item.get("succeeded", item.get("refused", item.get("toxicity")))
        cls = "bad" if verdict is True else ""
        rows.append(f"<tr><td>{html.escape(str(item.get('family') or item.get('dataset') or ''))}</td>"
                    f"<td><pre>{html.escape(str(item.get('prompt', ''))[:600])}</pre></td>"
                    f"<td><pre>{html.escape(str(item.get('answer', ''))[:600])}</pre></td>"
                    f"<td class='{cls}'>{_fmt(verdict)}</td><td>{html.escape(str(item.get('decided_by', '')))}</td>"
                    f"<td>{html.escape(str(item.get('reason', '') or ''))}</td></tr>")
    more = f"<p class='note'>{len(items) - limit} more in items.csv.</p>" if len(items) > limit else ""
    return ("<details><summary>every item (" + str(len(items)) + "): prompt, answer, verdict, who decided"
            "</summary><table><tr><th>set</th><th>prompt</th><th>answer</th><th>verdict</th><th>decided by</th>"
            "<th>why</th></tr>" + "".join(rows) + "</table>" + more + "</details>")


def _metric_table(metrics: list[dict[str, Any]], regressions: dict[str, dict[str, Any]]) -> str:
    head = ("<table><tr><th>metric</th><th>value</th><th>95% interval</th><th>n</th><th>better</th>"
            "<th>vs baseline</th></tr>")
    body = []
    for m in metrics:
        better = m["better"] if m["better"] != "ideal" else f"close to {_fmt(m.get('ideal'))}"
        r = regressions.get(m["name"])
        versus = ""
        if r:
            cls = "bad" if r["regression"] else "ok"
            word = "significantly worse" if r["regression"] else "no significant regression"
            versus = f'<span class="{cls}">{word}</span> (was {_fmt(r["baseline"])}, p={_fmt(r["p_value"])})'
        unit = f" {html.escape(m['unit'])}" if m.get("unit") else ""
        body.append(f'<tr><td title="{html.escape(m.get("description", ""))}">{html.escape(m["name"])}</td>'
                    f'<td class="num">{_fmt(m["value"])}{unit}</td>'
                    f'<td class="num">{_fmt(m["ci_low"])} to {_fmt(m["ci_high"])}</td>'
                    f'<td class="num">{m["n"]}</td><td>{html.escape(better)}</td><td>{versus}</td></tr>')
    return head + "".join(body) + "</table>"


def render_html(result: dict[str, Any]) -> str:
    """The whole report page."""
    regressions = {r["metric"]: r for r in result.get("regressions", [])}
    cost = result.get("cost", {})
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>truecost review: {html.escape(result['target'])}</title><style>{_CSS}</style></head><body>",
           f"<h1>Review of <code>{html.escape(result['target'])}</code></h1>",
           f"<p>Status: <b>{html.escape(result['status'])}</b>"
           + (f" ({html.escape(result['stop_reason'])})" if result.get("stop_reason") else "")
           + f" &middot; suites: {html.escape(', '.join(result['suites']))}"
           + f" &middot; started {html.escape(result['started_at'])}"
           + (f" &middot; ledger run <code>{html.escape(result['run_id'])}</code>" if result.get("run_id") else "")
           + "</p>",
           "<h2>What this review cost</h2><table>"]
    for key in ("review_cost_usd", "api_usd", "compute_usd", "requests", "prompt_tokens", "completion_tokens",
                "cpu_seconds", "wall_seconds"):
        if key in cost:
            out.append(f"<tr><td>{key}</td><td class='num'>{_fmt(cost[key])}</td></tr>")
    out.append("</table>")
    out.append("<p>Every item, with its verdict and what decided it: <a href='items.csv'>items.csv</a> "
               "(filter it in any spreadsheet) and results.json.</p>")
    if result.get("unjudged"):
        out.append(f"<p class='bad'>{result['unjudged']} security answers could not be judged (no rule fits and no "
                   "--judge was given); the rates leave them out and say so below.</p>")
    load = result.get("load") or {}
    for name, n in (load.get("skipped") or {}).items():
        out.append(f"<p class='note'>{html.escape(name)}: {n} malformed record(s) skipped</p>")
    for unused in load.get("unused") or []:
        out.append(f"<p class='note'>not used: {html.escape(unused)}</p>")
    if result.get("failed_on"):
        out.append("<h2>CI gate</h2><ul>" + "".join(f"<li class='bad'>{html.escape(r)}</li>"
                                                    for r in result["failed_on"]) + "</ul>")
    for suite in result["suites"]:
        info = result["suite_results"].get(suite)
        if info is None:
            continue
        metrics = [m for m in result["metrics"] if m["name"].startswith(suite + ".")]
        out.append(f"<h2>{html.escape(suite)}</h2>")
        if suite == "security":
            verdict = info["details"].get("verdict", "-")
            cls = "bad" if verdict == "fail" else "ok"
            out.append(f"<p>Verdict: <span class='{cls}'>{html.escape(verdict)}</span></p>")
            if info["findings"]:
                out.append("<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in info["findings"]) + "</ul>")
        out.append(bar_chart_svg(metrics))
        latency = next((m for m in metrics if m["name"] == "performance.latency_p50_s"), None)
        if latency:
            out.append(histogram_svg(latency["values"], "latency per request (s)"))
        out.append(_metric_table(metrics, regressions))
        out.append(_items_table(info.get("items", [])))
        for line in info.get("skipped", []):
            out.append(f"<p class='note'>skipped: {html.escape(line)}</p>")
    out.append("<p class='note'>Intervals: 95% Wilson score interval for proportions, BCa bootstrap over items "
               "for other statistics (both scipy). Regressions: one-sided two-sample bootstrap test at the 5% "
               "level. Bias scores follow the definitions of their papers (see docs/review.md).</p></body></html>")
    return "\n".join(out)
