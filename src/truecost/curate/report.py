"""report.json and report.html: what each step did, what the pipeline cost, and what the removed tokens are worth.

Dollars come only from `truecost.estimate` (compute price of the CPU time; training cost of the removed tokens).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from truecost.report import Report, Section, Table, basis
from truecost.report import render_html as render_report
from truecost.report.charts import bar_chart

if TYPE_CHECKING:
    from truecost.config import Config
    from truecost.curate.pipeline import CurateRun


def _tokens(n_bytes: float, bytes_per_token: float) -> int:
    return int(round(n_bytes / bytes_per_token))


def build_report(run: CurateRun, config: Config | None = None) -> dict[str, Any]:
    """The report as one JSON-ready dict, priced with `config`, else the run's config, else the defaults.
    Dollars come from `truecost.estimate` only."""
    from truecost.config import Config
    from truecost.estimate import compute_cost_usd, training_tokens_cost_usd

    cfg = config if config is not None else run.config if run.config is not None else Config()
    bpt = run.settings.bytes_per_token
    steps = []
    for st in run.stats:
        s = st.summary()
        s["tokens_in"] = _tokens(st.bytes_in, bpt)
        s["tokens_out"] = _tokens(st.bytes_out, bpt)
        s["tokens_removed"] = s["tokens_in"] - s["tokens_out"]
        if s["skipped"] is None:
            s.pop("skipped")
        steps.append(s)
    bytes_in = run.sample_bytes
    tokens_in, tokens_out = _tokens(bytes_in, bpt), _tokens(run.bytes_out, bpt)
    tokens_removed = tokens_in - tokens_out
    prices = cfg.compute_prices()
    step_cpu = sum(st.cpu_seconds for st in run.stats)
    speed_cpu = step_cpu if run.dry_run else run.cpu_seconds
    scale = run.total_bytes / bytes_in if run.dry_run and bytes_in else 1.0
    full_tokens_removed = tokens_removed * scale
    full_cpu = run.read_cpu_seconds + max(0.0, run.cpu_seconds - run.read_cpu_seconds) * scale
    target = cfg.target
    report: dict[str, Any] = {
        "kind": "curate",
        "dry_run": run.dry_run,
        "engine": run.engine,
        "workers": run.workers,
        "nodes": run.nodes,
        "steps_run": [st.step for st in run.stats],
        "input": _input_section(run),
        "totals": {
            "docs_in": run.docs_processed, "docs_out": run.docs_out, "bytes_in": bytes_in,
            "bytes_out": run.bytes_out, "tokens_in": tokens_in, "tokens_out": tokens_out,
            "tokens_removed": tokens_removed,
            "tokens_removed_fraction": round(tokens_removed / tokens_in, 4) if tokens_in else 0.0,
            "token_estimate": f"UTF-8 bytes / {bpt:g} (curate.bytes_per_token)",
        },
        "steps": steps,
        "cost": {
            "cpu_seconds": round(run.cpu_seconds, 3),
            "step_cpu_seconds": round(step_cpu, 3),
            "wall_seconds": round(run.wall_seconds, 3),
            # A dry run reads the whole input but processes a sample: its speed is the steps' alone.
            "mb_per_cpu_second": round(bytes_in / 1e6 / speed_cpu, 3) if speed_cpu else None,
            "peak_rss_mb": run.peak_rss_mb,
            "cpu_cost_usd": compute_cost_usd(run.cpu_seconds, 0.0, prices),
            "cpu_usd_per_core_hour": prices.cpu_usd_per_core_hour,
        },
        "savings": {
            "target": {"model": target.model, "method": target.method, "training_tokens": target.training_tokens,
                       "retrains_per_year": target.retrains_per_year,
                       "source": "truecost.toml [target]" if "target" in cfg.model_fields_set
                       else "truecost defaults (set [target] in truecost.toml for your plan)"},
            "tokens_removed": int(round(full_tokens_removed)),
            "usd_saved_per_training_run": round(training_tokens_cost_usd(full_tokens_removed, cfg), 4),
            # The tokens a year of retraining no longer sees, priced by estimate (not a dollar multiplied here).
            "usd_saved_per_year": round(training_tokens_cost_usd(full_tokens_removed * target.retrains_per_year,
                                                                 cfg), 4),
            "how": "truecost.estimate.training_tokens_cost_usd(tokens_removed) for the target plan",
        },
        "resume": {"tasks_run": run.tasks.get("tasks_run", 0), "tasks_skipped": run.tasks.get("tasks_skipped", 0)},
        "outputs": run.outputs,
    }
    if run.dry_run:
        report["estimate_full_run"] = _full_run_estimate(run, steps, scale, full_tokens_removed, full_cpu, prices)
    return report


def _full_run_estimate(run: CurateRun, steps: list[dict[str, Any]], scale: float, tokens_removed: float,
                       cpu_seconds: float, prices: Any) -> dict[str, Any]:
    """A dry run's sample scaled to the whole input."""
    from truecost.estimate import compute_cost_usd

    return {
        "sample_fraction": run.sample_fraction,
        "sample_documents": run.docs_processed,
        "sample_bytes": run.sample_bytes,
        "total_documents": run.total_docs,
        "total_bytes": run.total_bytes,
        "scale": round(scale, 3),
        "removal_rate_by_step": {s["step"]: round(s["docs_removed"] / s["docs_in"], 4) if s["docs_in"] else 0.0
                                 for s in steps},
        "tokens_removed": int(round(tokens_removed)),
        "cpu_seconds": round(cpu_seconds, 2),
        "wall_seconds": round(cpu_seconds / max(1, run.workers), 2),
        "cpu_cost_usd": compute_cost_usd(cpu_seconds, 0.0, prices),
        "caveat": "dedup finds more duplicates in the full corpus than in a sample, so its rate is a floor",
    }


def _input_section(run: CurateRun) -> dict[str, Any]:
    read = run.read
    bad = {k.split(":", 1)[1]: v for k, v in sorted(read.items()) if k.startswith("bad:")}
    return {
        "files": [{"path": s.url, "format": s.kind, "documents": n} for s, n in zip(run.shards, run.docs_read_per_shard,
                                                                                    strict=True)],
        "records_read": read.get("records", 0),
        "documents_read": run.total_docs,
        "bytes_read": read.get("bytes_read", 0),
        "bad_input": bad,
        "bad_input_removed": read.get("bad_removed", 0),
    }


def _steps_section(report: dict[str, Any]) -> Section:
    steps = report["steps"]
    rows = [[st["step"], st["docs_in"], st["docs_out"], st["docs_removed"], st["docs_modified"], st["tokens_in"],
             st["tokens_out"], st["cpu_seconds"],
             ", ".join(f"{k}: {v}" for k, v in st["removed_by_rule"].items()) or st.get("skipped", "")]
            for st in steps]
    charts = [bar_chart([st["step"] for st in steps], [st["tokens_removed"] for st in steps],
                        title="Tokens removed by step")] if steps else []
    return Section("Steps", tables=[Table(["step", "docs in", "docs out", "removed", "modified", "tokens in",
                                           "tokens out", "CPU s", "removed by rule"], rows,
                                          basis=[basis("measured", "this run")] * len(rows))], charts=charts)


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page of the report (no scripts, no external assets), through `truecost.report`."""
    t, c, s = report["totals"], report["cost"], report["savings"]
    summary = Section("What was removed and what it is worth", paragraphs=[
        f"Target plan: {s['target']['source']}. Tokens: {t['token_estimate']}.",
        f"Pipeline cost: {c['cpu_seconds']} CPU-seconds (${c['cpu_cost_usd']:.6f}), {c['wall_seconds']} s wall, "
        f"{c['mb_per_cpu_second']} MB per CPU-second; engine {report['engine']}."],
        tables=[Table(["figure", "value"], [
            ["tokens removed", t["tokens_removed"]], ["share of tokens removed", t["tokens_removed_fraction"]],
            ["documents in / out", f"{t['docs_in']:,} / {t['docs_out']:,}"],
            ["saved per training run of the target ($)", s["usd_saved_per_training_run"]],
            ["saved per year ($)", s["usd_saved_per_year"]]],
            basis=[basis("measured", "this run"), basis("measured", "this run"), basis("measured", "this run"),
                   basis("sourced", "truecost estimate of the target plan's training cost"),
                   basis("assumed", f"{s['target']['retrains_per_year']:g} retrains a year ([target])")])])
    examples = [[st["step"], rule, item["id"], item.get("value", ""), item["snippet"][:160]]
                for st in report["steps"] for rule, items in st["examples"].items() for item in items]
    bad = [[k, v] for k, v in report["input"]["bad_input"].items()]
    sections = [summary, _steps_section(report),
                Section("Bad input", tables=[Table(["kind", "count"], bad)] if bad else [],
                        paragraphs=[] if bad else ["None."]),
                Section("Examples", tables=[Table(["step", "rule", "id", "value", "snippet"], examples)])]
    if "estimate_full_run" in report:
        sections.append(Section("Full-run estimate from the sample",
                                preformatted=[json.dumps(report["estimate_full_run"], indent=2)]))
    title = f"truecost curate{' (dry run)' if report['dry_run'] else ''}"
    subtitle = (f"{t['tokens_removed']:,} of {t['tokens_in']:,} tokens removed ({t['tokens_removed_fraction']:.1%});"
                f" worth ${s['usd_saved_per_training_run']:,.2f} per training run of {s['target']['model']} "
                f"(${s['usd_saved_per_year']:,.2f} per year)")
    return render_report(Report(title, subtitle, sections))
