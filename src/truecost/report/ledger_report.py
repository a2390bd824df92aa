"""The report of what a ledger holds: spend by kind, over time, by served model, and savings by lever.

Spend counts every CPU-second and dollar once: each run holds its own share (a parent, such as a demo or a tune
study, leaves out what its nested runs measured), so totals are plain sums (`truecost.ledger.total_spend`).

Savings convention: any run may put `{"levers": [{"name": str, "saving_usd": float, "basis": str}]}` in its
results, where `basis` is `measured` (this run measured the saving), `sourced` (a published figure) or `assumed`
(a default). Only measured savings are added up; the others are listed one by one with their basis, and a lever
without a basis is listed as `unstated`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from truecost.ledger import Ledger, RequestRecord, RunRecord, total_spend
from truecost.report.charts import bar_chart, line_chart
from truecost.report.document import BASES, Report, Section, Table, basis


def _levers(runs: list[RunRecord], ignored: list[dict[str, str]] | None = None) -> list[dict[str, Any]]:
    """Every lever recorded in the runs' results, with its basis (`unstated` when the run gave none).

    A lever whose saving is not a finite number (text, NaN, inf) is left out, and noted in `ignored`: one run's
    malformed results must neither stop the report nor turn its totals into NaN.
    """
    found = []
    for run in runs:
        levers = run.results.get("levers", []) or []
        for lever in levers if isinstance(levers, list) else []:
            if isinstance(lever, dict) and "name" in lever:
                saving = _finite_usd(lever.get("saving_usd"))
                if saving is None:
                    if ignored is not None:
                        ignored.append({"name": str(lever["name"]), "run_id": run.id,
                                        "saving_usd": repr(lever.get("saving_usd"))})
                    continue
                stated = lever.get("basis") if lever.get("basis") in BASES else "unstated"
                found.append({"name": str(lever["name"]), "basis": stated, "saving_usd": saving, "run_id": run.id})
    return found


def _finite_usd(value: Any) -> float | None:
    """A saving as a finite float (None/absent: 0.0); None when it is not a number at all."""
    if value is None:
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def summarise(runs: list[RunRecord], requests: list[RequestRecord]) -> dict[str, Any]:
    """Totals by kind, cumulative spend by day and kind, request spend by model and savings by lever.

    `savings_by_lever_usd` adds up measured savings only; `levers` lists every lever with its basis.
    """
    by_kind: dict[str, dict[str, float]] = {}
    for kind in sorted({run.kind for run in runs}):
        spend = total_spend(run for run in runs if run.kind == kind).to_dict()
        by_kind[kind] = {"runs": spend.pop("runs"), **spend}
    daily: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for run in runs:
        daily[run.kind][run.started_at.date().isoformat()] += run.cost_usd
    by_model: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for req in requests:
        by_model[req.model]["requests"] += 1
        by_model[req.model]["cost_usd"] += req.cost_usd
        by_model[req.model]["tokens"] += req.prompt_tokens + req.completion_tokens
    ignored: list[dict[str, str]] = []
    levers = _levers(runs, ignored)
    measured: dict[str, float] = defaultdict(float)
    for lever in levers:
        if lever["basis"] == "measured":
            measured[lever["name"]] += lever["saving_usd"]
    lost = [run for run in runs if run.status == "lost"]
    return {
        "runs": len(runs),
        "requests": len(requests),
        "total_cost_usd": total_spend(runs).cost_usd,
        "total": total_spend(runs).to_dict(),
        "by_kind": by_kind,
        "daily_cost_usd": {k: dict(sorted(v.items())) for k, v in daily.items()},
        "by_model": {k: dict(v) for k, v in sorted(by_model.items())},
        "savings_by_lever_usd": dict(sorted(measured.items(), key=lambda kv: -kv[1])),
        "measured_savings_usd": sum(measured.values()),
        "levers": levers,
        "ignored_levers": ignored,
        "lost_runs": len(lost),
        "lost_cost_usd": total_spend(lost).cost_usd,
        "all_measured": all(lever["basis"] == "measured" for lever in levers),
    }


def _subtitle(summary: dict[str, Any], source: str, *, estimates: bool = False) -> str:
    text = f"{summary['runs']} run(s) and {summary['requests']} gateway request(s) from {source}. "
    if summary["all_measured"] and not estimates:
        return text + "Every figure here was measured and recorded in the ledger."
    if estimates:
        text += ("Spend figures were measured by the ledger's meters; the cost of ownership also rests on sourced "
                 "and assumed inputs, each labelled with its basis.")
        return text + ("" if summary["all_measured"] else " Savings that runs sourced or assumed are listed with "
                       "their basis and never added to the measured total.")
    return text + ("Spend figures were measured by the ledger's meters; savings that runs sourced or assumed are "
                   "listed with their basis and never added to the measured total.")


def note_estimates(report: Report, summary: dict[str, Any], source: str) -> None:
    """Sections with sourced or assumed figures (the cost of ownership) were added: the subtitle stops saying that
    every figure was measured."""
    report.subtitle = _subtitle(summary, source, estimates=True)


def _overview(summary: dict[str, Any]) -> Section:
    kinds = summary["by_kind"]
    paragraphs = [f"Total metered cost: ${summary['total_cost_usd']:,.4f}. Each CPU-second and dollar is counted "
                  "once: a run that contains others (a demo, a tune study) holds only its own share."]
    if summary["lost_runs"]:
        paragraphs.append(f"{summary['lost_runs']} run(s) were lost (their process died without closing them); "
                          f"their ${summary['lost_cost_usd']:,.4f} is the spend they had flushed, at most one "
                          "heartbeat short of what they used.")
    overview = Section("Spend by kind of work", paragraphs=paragraphs)
    overview.tables.append(Table(
        columns=["kind", "runs", "cost $", "CPU hours", "GPU hours", "energy kWh", "tokens"],
        rows=[[k, int(v["runs"]), v["cost_usd"], v["cpu_seconds"] / 3600, v["gpu_hours"], v["energy_kwh"],
               int(v["tokens"])] for k, v in kinds.items()],
        basis=[basis("measured", "ledger run records")] * len(kinds)))
    if kinds:
        overview.charts.append(bar_chart(list(kinds), [v["cost_usd"] for v in kinds.values()],
                                         title="Cost by kind ($)", unit=" $"))
    return overview


def _over_time(daily: dict[str, dict[str, float]]) -> Section:
    series: dict[str, Sequence[tuple[float, float]]] = {}
    days = sorted({d for per_kind in daily.values() for d in per_kind})
    for kind, per_day in daily.items():
        total, points = 0.0, list[tuple[float, float]]()
        for i, day in enumerate(days):
            total += per_day.get(day, 0.0)
            points.append((float(i), total))
        series[kind] = points
    return Section("Spend over time", paragraphs=[f"Cumulative cost by kind, {days[0]} to {days[-1]} (x: day index)."],
                   charts=[line_chart(series, title="Cumulative cost by kind ($)", x_label="day", y_label="$")])


def _by_model(models: dict[str, dict[str, float]]) -> Section:
    section = Section("Serving spend by model")
    section.tables.append(Table(columns=["model", "requests", "cost $", "tokens"],
                                rows=[[m, int(v["requests"]), v["cost_usd"], int(v["tokens"])]
                                      for m, v in models.items()],
                                basis=[basis("measured", "gateway request log")] * len(models)))
    section.charts.append(bar_chart(list(models), [v["cost_usd"] for v in models.values()],
                                    title="Serving cost by model ($)", unit=" $"))
    return section


def _savings(summary: dict[str, Any]) -> Section:
    measured = summary["savings_by_lever_usd"]
    others = [lever for lever in summary["levers"] if lever["basis"] != "measured"]
    paragraphs = [f"Measured savings: ${summary['measured_savings_usd']:,.2f}, as reported by the runs that applied "
                  "each lever (see each run's results for how)."]
    section = Section("Savings by lever", paragraphs=paragraphs)
    if measured:
        section.tables.append(Table(columns=["lever", "saving $"], rows=[[k, v] for k, v in measured.items()],
                                    basis=[basis("measured", "ledger run results")] * len(measured)))
        section.charts.append(bar_chart(list(measured), list(measured.values()), title="Measured saving by lever ($)",
                                        unit=" $"))
    if summary.get("ignored_levers"):
        left_out = [f"{i['name']} from run {i['run_id'][:8]} (saving {i['saving_usd']} is not a finite number)"
                    for i in summary["ignored_levers"]]
        paragraphs.append("Left out: " + "; ".join(left_out) + ".")
    if others:
        paragraphs.append("Not added up: these savings were not measured by the run that recorded them.")
        section.tables.append(Table(columns=["lever", "saving $", "run"],
                                    rows=[[o["name"], o["saving_usd"], o["run_id"][:8]] for o in others],
                                    basis=[_lever_basis(o) for o in others]))
    return section


def _lever_basis(lever: dict[str, Any]) -> str:
    if lever["basis"] == "unstated":  # a figure of unknown provenance is not a measurement
        return basis("assumed", f"run {lever['run_id'][:8]} recorded no basis")
    return basis(lever["basis"], f"run {lever['run_id'][:8]}")


def build_ledger_report(summary: dict[str, Any], source: str) -> Report:
    """Turn a `summarise` result into a Report with tables and charts."""
    report = Report(title="truecost — spend report", subtitle=_subtitle(summary, source))
    report.sections.append(_overview(summary))
    if summary["daily_cost_usd"]:
        report.sections.append(_over_time(summary["daily_cost_usd"]))
    if summary["by_model"]:
        report.sections.append(_by_model(summary["by_model"]))
    if summary["levers"] or summary.get("ignored_levers"):
        report.sections.append(_savings(summary))
    if not summary["by_kind"]:
        report.sections.append(Section("Nothing recorded yet", paragraphs=[
            "The ledger holds no runs. Run `truecost demo`, `truecost curate` or `truecost train` first."]))
    return report


def ledger_report(ledger: Ledger) -> tuple[Report, dict[str, Any]]:
    """Read everything from `ledger` and build its report and summary."""
    summary = summarise(ledger.list_runs(), ledger.list_requests())
    return build_ledger_report(summary, ledger.display_url), summary
