"""The TCO as report sections: the headline split by basis, every input with its basis and run ids, and the
tornado chart of the assumptions. Used by `estimate tco --report`, `truecost report` and the demo."""

from __future__ import annotations

from truecost.estimate.tco import ARMS, COMPONENTS, TcoResult
from truecost.report.charts import PALETTE, grouped_bar_chart, signed_bar_chart, tornado_chart
from truecost.report.document import Report, Section, Table, basis

BASIS_COLORS = {"measured": PALETTE[2], "sourced": PALETTE[0], "assumed": PALETTE[3]}
TORNADO_ROWS = 12


def _usd(value: float) -> str:
    return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"


def headline_section(result: TcoResult) -> Section:
    """Both projects by component, the difference, and its split by basis and by input."""
    b = result.by_basis
    share = b["measured"] / result.difference_usd if result.difference_usd else 0.0
    text = (f"{result.horizon_months}-month cost of {result.model} on {result.gpu}: poorly prepared "
            f"{_usd(result.poor['total_usd'])}, well prepared {_usd(result.well['total_usd'])}; difference "
            f"{_usd(result.difference_usd)}. Of the difference, {_usd(b['measured'])} ({share:.0%}) comes from "
            f"measured inputs, {_usd(b['sourced'])} from sourced figures and {_usd(b['assumed'])} from assumptions.")
    names = [c.removesuffix("_usd").replace("_", " ") for c in COMPONENTS]
    table = Table(["component", "poor $", "well $", "difference $"],
                  [[n, result.poor[c], result.well[c], result.poor[c] - result.well[c]]
                   for n, c in zip(names, COMPONENTS, strict=True)]
                  + [["total", result.poor["total_usd"], result.well["total_usd"], result.difference_usd]])
    by_input = [(name, value) for name, value in result.by_input.items() if value]
    colors = [BASIS_COLORS[result.inputs[name].effect_basis] for name, _ in by_input]
    charts = [signed_bar_chart(list(b), list(b.values()), title="Difference by basis ($)", unit=" $",
                               colors=[BASIS_COLORS[k] for k in b]),
              grouped_bar_chart(names, {"poor": [result.poor[c] for c in COMPONENTS],
                                        "well": [result.well[c] for c in COMPONENTS]}, title="Cost by component ($)")]
    if by_input:
        charts.append(signed_bar_chart([n for n, _ in by_input], [v for _, v in by_input], colors=colors,
                                       title="Difference by input ($; colour = basis)", unit=" $"))
    return Section("The headline and what carries it", paragraphs=[text], tables=[table], charts=charts, notes=[
        "Split: the exact Shapley value of each input whose two values differ (its mean contribution over every "
        "order of switching the poor project's values in); an input counts as measured only when both of its "
        "values were measured. Inputs equal in both projects (wages, prices) scale the difference without "
        "carrying it: see the sensitivity section."])


def inputs_section(result: TcoResult) -> Section:
    """Every input of each project: value, unit, and where it came from (run ids for measured values)."""
    rows, bases = [], []
    for line in result.measured_lines():
        rows.append([line["input"], line["arm"], line["value"], line["unit"]])
        runs = f" (runs {', '.join(r[:8] for r in line['run_ids'])})" if line["run_ids"] else ""
        bases.append(basis(line["basis"], line["source"] + runs))
    notes = [*result.aligned, *result.ignored_overrides]
    if result.ledger:
        notes = [f"ledger {result.ledger['url']}: {result.ledger['runs_read']} run(s), "
                 f"{result.ledger['requests_read']} request(s) read"
                 + (f" under run {result.ledger['run_tree']}" if result.ledger.get("run_tree") else ""),
                 *result.ledger.get("notes", []), *notes]
    return Section("Every input and its basis", tables=[Table(["input", "project", "value", "unit"], rows,
                                                              basis=bases)], notes=notes)


def sensitivity_section(result: TcoResult) -> Section:
    """The tornado chart: each assumed or sourced value moved alone across its stated range."""
    rows = [r for r in result.sensitivity if r.swing > 0]
    low, high = result.sensitivity_range_usd
    table = Table(["value moved", "now", "low", "high", "difference at low $", "difference at high $"],
                  [[r.name, r.value, r.low, r.high, r.difference_at_low, r.difference_at_high] for r in rows],
                  basis=[basis(r.basis) for r in rows])
    chart = tornado_chart([(f"{r.name} ({r.low:g}-{r.high:g})", r.difference_at_low, r.difference_at_high)
                           for r in rows[:TORNADO_ROWS]], result.difference_usd,
                          title="Difference as each assumption moves across its range ($)", unit=" $")
    return Section("How much the headline depends on each assumption", paragraphs=[
        f"With every assumed or sourced value at the end of its range that lowers (raises) the difference, it "
        f"runs from {_usd(low)} to {_usd(high)} (now {_usd(result.difference_usd)}). Measured values are not "
        "moved."], tables=[table], charts=[chart] if rows else [])


def tco_sections(result: TcoResult) -> list[Section]:
    """The three TCO sections, in reading order."""
    return [headline_section(result), inputs_section(result), sensitivity_section(result)]


def tco_report(result: TcoResult) -> Report:
    """A whole report of one TCO."""
    measured = sorted({r for item in result.inputs.values() for arm in ARMS for r in item.arm(arm).run_ids})
    return Report(title=f"truecost — {result.horizon_months}-month cost of ownership",
                  subtitle=f"well vs poorly prepared; {len(measured)} ledger run(s) measured inputs"
                  if measured else "well vs poorly prepared; no input measured (run `estimate tco --from-ledger`)",
                  sections=tco_sections(result))
