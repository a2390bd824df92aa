"""The report of what a ledger holds: spend by kind, over time, by served model, and savings by lever.

Savings convention: any run may put `{"levers": [{"name": str, "saving_usd": float}]}` in its results (curate,
route and the demo do); the report adds them up per lever.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from truecost.ledger import Ledger, RequestRecord, RunRecord
from truecost.report.charts import bar_chart, line_chart
from truecost.report.document import Report, Section, Table


def summarise(runs: list[RunRecord], requests: list[RequestRecord]) -> dict[str, Any]:
    """Totals by kind, cumulative spend by day and kind, request spend by model and savings by lever."""
    by_kind: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for run in runs:
        totals = by_kind[run.kind]
        totals["runs"] += 1
        for key in ("cost_usd", "cpu_seconds", "gpu_hours", "energy_kwh", "tokens", "wall_seconds"):
            totals[key] += float(getattr(run, key))
    daily: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for run in runs:
        daily[run.kind][run.started_at.date().isoformat()] += run.cost_usd
    by_model: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for req in requests:
        by_model[req.model]["requests"] += 1
        by_model[req.model]["cost_usd"] += req.cost_usd
        by_model[req.model]["tokens"] += req.prompt_tokens + req.completion_tokens
    levers: dict[str, float] = defaultdict(float)
    for run in runs:
        for lever in run.results.get("levers", []) or []:
            if isinstance(lever, dict) and "name" in lever:
                levers[str(lever["name"])] += float(lever.get("saving_usd") or 0.0)
    return {
        "runs": len(runs),
        "requests": len(requests),
        "total_cost_usd": sum(r.cost_usd for r in runs),
        "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
        "daily_cost_usd": {k: dict(sorted(v.items())) for k, v in daily.items()},
        "by_model": {k: dict(v) for k, v in sorted(by_model.items())},
        "savings_by_lever_usd": dict(sorted(levers.items(), key=lambda kv: -kv[1])),
    }


def build_ledger_report(summary: dict[str, Any], source: str) -> Report:
    """Turn a `summarise` result into a Report with tables and charts."""
    report = Report(title="truecost — spend report",
                    subtitle=f"{summary['runs']} run(s) and {summary['requests']} gateway request(s) from {source}; "
                             "every figure here was measured and recorded in the ledger.")
    kinds = summary["by_kind"]
    overview = Section("Spend by kind of work", paragraphs=[
        f"Total metered cost: ${summary['total_cost_usd']:,.4f}."])
    overview.tables.append(Table(
        columns=["kind", "runs", "cost $", "CPU hours", "GPU hours", "energy kWh", "tokens"],
        rows=[[k, int(v["runs"]), v["cost_usd"], v["cpu_seconds"] / 3600, v["gpu_hours"], v["energy_kwh"],
               int(v["tokens"])] for k, v in kinds.items()],
        basis=["measured: ledger run records"] * len(kinds)))
    if kinds:
        overview.charts.append(bar_chart(list(kinds), [v["cost_usd"] for v in kinds.values()],
                                         title="Cost by kind ($)", unit=" $"))
    report.sections.append(overview)

    daily = summary["daily_cost_usd"]
    if daily:
        series: dict[str, Sequence[tuple[float, float]]] = {}
        days = sorted({d for per_kind in daily.values() for d in per_kind})
        for kind, per_day in daily.items():
            total, points = 0.0, list[tuple[float, float]]()
            for i, day in enumerate(days):
                total += per_day.get(day, 0.0)
                points.append((float(i), total))
            series[kind] = points
        report.sections.append(Section(
            "Spend over time", paragraphs=[f"Cumulative cost by kind, {days[0]} to {days[-1]} (x: day index)."],
            charts=[line_chart(series, title="Cumulative cost by kind ($)", x_label="day", y_label="$")]))

    models = summary["by_model"]
    if models:
        section = Section("Serving spend by model")
        section.tables.append(Table(columns=["model", "requests", "cost $", "tokens"],
                                    rows=[[m, int(v["requests"]), v["cost_usd"], int(v["tokens"])]
                                          for m, v in models.items()],
                                    basis=["measured: gateway request log"] * len(models)))
        section.charts.append(bar_chart(list(models), [v["cost_usd"] for v in models.values()],
                                        title="Serving cost by model ($)", unit=" $"))
        report.sections.append(section)

    levers = summary["savings_by_lever_usd"]
    if levers:
        section = Section("Savings by lever", paragraphs=["Dollars saved as reported by the runs that applied each "
                                                          "lever (see each run's results for how)."])
        section.charts.append(bar_chart(list(levers), list(levers.values()), title="Saving by lever ($)", unit=" $"))
        report.sections.append(section)
    if not kinds:
        report.sections.append(Section("Nothing recorded yet", paragraphs=[
            "The ledger holds no runs. Run `truecost demo`, `truecost curate` or `truecost train` first."]))
    return report


def ledger_report(ledger: Ledger) -> tuple[Report, dict[str, Any]]:
    """Read everything from `ledger` and build its report and summary."""
    summary = summarise(ledger.list_runs(), ledger.list_requests())
    from truecost.ledger.store import _safe

    return build_ledger_report(summary, _safe(ledger.url)), summary
