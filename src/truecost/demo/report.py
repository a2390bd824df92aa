"""The demo's report: the effects with their intervals, what curation removed and lost, the eval curves, the
defects, review and routing, and the TCO's headline split by basis with its sensitivity (truecost.report).

Every table row carries its basis: measured (a ledger run of this demo), sourced (a cited figure) or assumed.
"""

from __future__ import annotations

from typing import Any

from truecost.estimate.tco import TcoResult
from truecost.report.charts import bar_chart, interval_chart, line_chart
from truecost.report.document import Report, Section, Table, basis
from truecost.report.tco_report import tco_sections


def _run(run_id: str | None) -> str:
    return f"ledger run {run_id[:8]}" if run_id else "this run"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cell(value: Any) -> Any:
    """A table cell: numbers stay numbers; a value the run could not measure (a ratio over a zero rate) says so."""
    return "n/a" if value is None else value


def effects_section(effects: dict[str, Any]) -> Section:
    """Every effect: poor, well, the 95% interval of the difference and what it is over."""
    rows, bases = [], []
    for name, e in effects.items():
        interval = f"[{_fmt(e.get('ci_low'))}, {_fmt(e.get('ci_high'))}]"
        rows.append([name.replace("_", " "), _cell(e["poor"]), _cell(e["well"]), interval, e.get("unit", ""),
                     f"{e['n_items']} {e['interval_over']}, {e['n_seeds']} seed"])
        bases.append(basis("measured", e.get("note", "")))
    rates = {k: v for k, v in effects.items() if v.get("unit") == "share" and k.startswith("generation_")}
    chart = interval_chart([k.removeprefix("generation_") + " (poor - well)" for k in rates],
                           [v["poor"] - v["well"] for v in rates.values()], [v["ci_low"] for v in rates.values()],
                           [v["ci_high"] for v in rates.values()], domain=(-1.0, 1.0),
                           title="Defect rates in generations: poor minus well, with 95% intervals")
    return Section("What poor data did to the model, measured", paragraphs=[
        "One seed of the real model (SmolLM2-135M-Instruct, LoRA): every interval is a 95% bootstrap over held-out "
        "items (documents, prompts or planted canaries), paired where both models saw the same items. An interval "
        "that spans 0 is a difference this run cannot tell from none.",
        "How these carry to the TCO below, which plans a different, larger model: shares of the data and the "
        "process (tokens curation removed, the routing saving) carry as measured; the models' own behaviour rates "
        "do not. What carries from the reviews is the relative effect of preparation, the bad-output ratio (poor "
        "over well, on the same items), applied to the plan's base rate of bad outputs, which is the same in both "
        "projects and named as assumed. Every other assumption is equal in both projects, so it scales the "
        "difference but never makes it."],
        tables=[Table(["effect", "poor", "well", "95% interval", "unit", "over"], rows, basis=bases)],
        charts=[chart] if rates else [])


def curation_section(corpus: dict[str, Any], cur: dict[str, Any]) -> Section:
    """What the recipe removed, which injected defects it caught, and how much real content it lost."""
    rows = [["injected duplicate copies left", cur["copies_injected"], cur["copies_left"]],
            ["junk documents left", cur["junk_injected"], cur["junk_injected"] - cur["junk_removed"]],
            ["PII strings left (documents with PII + planted canaries)",
             corpus["defects_injected"].get("pii", 0) + corpus["defects_injected"].get("canary", 0), cur["pii_left"]],
            ["mojibake sequences left", corpus["defects_injected"].get("mojibake", 0), cur["mojibake_left"]],
            ["boilerplate lines left", 2 * corpus["defects_injected"].get("boilerplate", 0), cur["boilerplate_left"]],
            ["real documents lost entirely", cur["content_docs"], cur["content_docs_lost"]]]
    # A defect with no published rate is not injected: named in the paragraph below, not a row with a basis.
    injected = {name: r for name, r in corpus["defect_rates"].items() if r["basis"] != "not injected"}
    rates = [[name, r["value"], r["unit"], r["citation"]] for name, r in injected.items()]
    lost = ", ".join(f"{k}: {v}" for k, v in sorted(cur["content_docs_lost_by_rule"].items())) or "none"
    return Section("Data: the poor copy, and what curation removed and lost", paragraphs=[
        f"Real documents lost: {cur['content_docs_lost']} of {cur['content_docs']} "
        f"({cur['content_lost_share']:.1%}; by rule: {lost}). Another {cur['content_docs_redundant']} were removed "
        "as near-duplicates of real documents that survived (the standard library repeats some docstrings).",
        f"Curation kept {cur['docs_out']} of {cur['docs_in']} documents ({cur['bytes_out'] / 1e6:.2f} of "
        f"{cur['bytes_in'] / 1e6:.2f} MB) with the recipe {cur['recipe']}.",
        _removed_origin(cur.get("removed_bytes_by_origin") or {}, corpus["defect_rates"])],
        tables=[Table(["defect", "injected", "left after curation"], rows,
                      basis=[basis("measured", _run(cur.get("run_id")))] * len(rows), caption="Defects caught"),
                Table(["defect", "rate", "unit", "source"], rates,
                      basis=[basis(r["basis"], "defect_rates.csv") for r in injected.values()],
                      caption="Injected defect rates (data/defect_rates.csv)")])


def _removed_origin(origin: dict[str, int], rates: dict[str, dict[str, Any]]) -> str:
    """Where the removed bytes came from: the measured duplicate share rests on the rates they were injected at."""
    total = sum(origin.values())
    if not total:
        return ""
    parts = ", ".join(f"{name.replace('_', ' ')} {value / total:.0%}" for name, value in origin.items())
    return (f"Of the bytes removed: {parts}. {_injection_bases(rates)} The measured share of tokens removed is a "
            "measurement of this poor copy, made as dirty as those rates say.")


def _injection_bases(rates: dict[str, dict[str, Any]]) -> str:
    """Which defects this run injected at a published rate, at an assumed one, or not at all (its record of
    data/defect_rates.csv)."""
    by_basis: dict[str, list[str]] = {}
    for name, row in rates.items():
        by_basis.setdefault(row["basis"], []).append(name.replace("_", " "))
    words = {"sourced": "injected at published rates", "assumed": "injected at assumed rates",
             "not injected": "not injected (no published rate found)"}
    return "Defects " + "; ".join(f"{words.get(basis, basis)}: {', '.join(names)}"
                                  for basis, names in by_basis.items()) + " (data/defect_rates.csv)."


def training_section(training: dict[str, Any]) -> Section:
    """Both arms' eval curves on clean held-out text and their budgets."""
    arms = {k: v for k, v in training.items() if isinstance(v, dict)}
    rows = [[arm, r["tokens"], r["heldout_loss"], r["tokens_per_second"], r["cpu_seconds"], r["cost_usd"]]
            for arm, r in arms.items()]
    return Section("Training: same base model, same token budget, different data", paragraphs=[
        f"Base model before fine-tuning: {training['base_heldout_loss']:.4f} nats/token on the same held-out text."],
        tables=[Table(["data", "tokens", "held-out loss", "tokens/s", "CPU-s", "cost $"], rows,
                      basis=[basis("measured", ", ".join(i[:8] for i in r["run_ids"])) for r in arms.values()])],
        charts=[line_chart({arm: [tuple(p) for p in r["curve"]] for arm, r in arms.items()},
                           title="Held-out loss on clean text by optimizer step (measured)", x_label="step",
                           y_label="nats/token")])


def behaviour_section(measured: dict[str, Any]) -> Section:
    """Review accuracy and generation defects of both models."""
    review, defects = measured["review"], measured["defects"]
    rows = [[arm, review[arm]["accuracy"], f"[{_fmt(review[arm]['ci_low'])}, {_fmt(review[arm]['ci_high'])}]",
             review[arm]["n"], defects[arm]["any_defect"], defects[arm]["n"]] for arm in ("poor", "well")]
    examples = [f"{arm}: {text!r}" for arm in ("poor", "well") for text in defects[arm]["examples"][:3]]
    return Section("Behaviour: the same review and the same prompts for both models", paragraphs=[
        "Task: name the standard-library package a held-out docstring comes from (multiple choice, judged by "
        "`truecost review`). Defects: greedy continuations of held-out documents scanned with curate's PII rules, "
        "ftfy's mojibake test, the poor data's boilerplate lines and the exact planted strings."],
        tables=[Table(["model", "review accuracy", "95% interval", "items", "generations with a defect", "prompts"],
                      rows, basis=[basis("measured", f"{_run(review[a]['run_id'])}, {_run(defects[a]['run_id'])}")
                                   for a in ("poor", "well")])],
        preformatted=["\n".join(examples)] if examples else [])


def routing_section(routing: dict[str, Any]) -> Section:
    """The saving at the strong model's quality, with its interval, and the frontier."""
    rows = [[m, v["quality"], v["cost_usd"]] for m, v in routing["models"].items()]
    text = (f"A kNN router, cross-fitted on two halves of {routing['n_prompts']} held-out prompts, saves "
            f"{_fmt(routing['saving'])} of the strong model's cost at its quality (95% interval "
            f"[{_fmt(routing['ci_low'])}, {_fmt(routing['ci_high'])}]); an oracle would save "
            f"{_fmt(routing['oracle_saving'])}. The larger model is better on {routing['strong_better_share']:.0%} "
            "of prompts. Quality: per-byte probability of the reference continuation; cost: measured CPU time.")
    return Section("Serving: routing between two real models", paragraphs=[text],
                   tables=[Table(["model", "mean quality", "mean $/request"], rows,
                                 basis=[basis("measured", _run(routing["run_id"]))] * len(rows))],
                   charts=[line_chart({"kNN router": [tuple(p) for p in routing["frontier"]]},
                                      title="Routing policies: cost vs quality", x_label="$ per request",
                                      y_label="quality")])


def timings_section(timings: dict[str, dict[str, float]]) -> Section:
    """Wall and CPU seconds per step."""
    rows: list[list[Any]] = [[k, v["wall_seconds"], v["cpu_seconds"]] for k, v in timings.items()]
    steps = {k: v["cpu_seconds"] for k, v in timings.items() if k != "total"}
    peak = timings.get("total", {}).get("peak_rss_gib")
    notes = [f"Peak resident memory of this process: {peak:.2f} GiB."] if peak is not None else []
    return Section("Timings", paragraphs=notes, tables=[Table(["step", "wall s", "CPU-s (this process)"], rows,
                                            basis=[basis("measured", "clock")] * len(rows))],
                   charts=[bar_chart(list(steps), list(steps.values()), title="CPU-seconds by step", unit=" s")])


def build_demo_report(doc: dict[str, Any], tco: TcoResult) -> Report:
    """The whole demo report."""
    measured = doc["measured"]
    report = Report(title="truecost demo — what poor data preparation costs, measured on a real model",
                    subtitle=f"{measured['corpus']['clean_train_docs']} real documents "
                             f"({measured['corpus']['source']}); TCO of {tco.model} on {tco.gpu} over "
                             f"{tco.horizon_months} months from this run's ledger")
    report.sections.extend(tco_sections(tco)[:1])
    report.sections.append(effects_section(doc["effects"]))
    report.sections.append(curation_section(measured["corpus"], measured["curate"]))
    report.sections.append(training_section(measured["training"]))
    report.sections.append(behaviour_section(measured))
    if measured.get("routing"):
        report.sections.append(routing_section(measured["routing"]))
    report.sections.extend(tco_sections(tco)[1:])
    report.sections.append(timings_section(doc["timings"]))
    return report
