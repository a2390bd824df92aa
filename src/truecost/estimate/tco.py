"""Total cost of ownership over a horizon: training, retrains, serving, human review and monitoring, for a
well-prepared and a poorly prepared project side by side, with the basis of every input.

Each input has a value per project ("arm") and a *basis*:
- measured: a number a ledger run recorded (the run ids are named; see `truecost.estimate.tco_ledger`);
- sourced: a public figure with its citation and date (`data/published_figures.csv`, the GPU/price catalogue);
- assumed: a named default, overridable in truecost.toml (`[estimate.tco]` for both projects,
  `[estimate.tco.well]` / `[estimate.tco.poor]` for one) or with `overrides={"poor.retrains_per_year": 6}`.
A measurement always wins over an assumption of the same input and project; an override of a measured value is
ignored and reported; and where only one project's value is measured, the other's assumption may not reverse or
invent the effect (`align_to_measurements`). The headline difference is split by basis
(`truecost.estimate.tco_analysis`).

Only measurements and sourced figures may tell the projects apart by default. Every assumed input has the same
value in both projects, so an assumption scales the difference (the sensitivity analysis shows by how much) but
never carries it. Where a team believes poor preparation costs more in some input nothing measured (slower fixes,
more firefighting, a bigger fleet), that belief is an optional lever (`LEVERS`, listed in `optional_levers`): it
is off until the user sets it (`--set poor.incident_hours_per_month=30`), and then counts as assumed.

Transfer rule (what a measurement on one model says about the plan's model). Shares of the *data* or the
*process* carry as measured: tokens curation removes, spend lost to failed runs, retrain decisions per year, the
share of serving cost a router saves at the strong model's quality. Utilisation carries only from runs on the
plan's device type. Absolute behaviour rates of a *model* do not carry to a different model: the demo reviews a
135M model, the plan serves a 7B one. What carries is the relative effect of preparation, `bad_output_ratio` =
(poor project's bad-output rate) / (well project's), measured when reviews of both projects exist (with its 95%
interval when their item counts are known), applied to the base rate `bad_output_rate` of the plan's
well-prepared model, which is the same in both projects and is sourced or assumed (or measured, when a review of
only the user's own model exists). The project's bad-output rate is their product. Because the base is shared,
the attribution counts the difference it produces under the ratio's basis (measured) and shows the base in the
sensitivity analysis, as it does wages and prices.

The contract other parts (the demo, the report) rely on is `tco_from_ledger`; `tco` keeps its earlier keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from truecost.config import Config
from truecost.errors import UserError

if TYPE_CHECKING:
    from truecost.estimate.tco_analysis import SensitivityRow
    from truecost.estimate.tco_ledger import Measurement
    from truecost.ledger import Ledger

Basis = Literal["measured", "sourced", "assumed"]
Arm = Literal["well", "poor"]
ARMS: tuple[Arm, Arm] = ("well", "poor")
BASES: tuple[Basis, Basis, Basis] = ("measured", "sourced", "assumed")
COMPONENTS = ("training_usd", "retraining_usd", "serving_usd", "human_review_usd", "monitoring_usd")


@dataclass(frozen=True)
class InputValue:
    """One project's value of one TCO input and where it came from.

    `source` says how: the measurement (measured), the citation and date (sourced) or the reason (assumed).
    `low`/`high` is the range the sensitivity analysis moves an assumed or sourced value across (None: not moved).
    """

    value: float
    basis: Basis
    source: str
    run_ids: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"value": self.value, "basis": self.basis, "source": self.source, "run_ids": list(self.run_ids),
                "low": self.low, "high": self.high}


@dataclass(frozen=True)
class TcoInput:
    """One input of the TCO model: what it is, its unit, and its value in each project."""

    name: str
    unit: str
    meaning: str
    well: InputValue
    poor: InputValue

    def arm(self, arm: Arm) -> InputValue:
        """The value of one project."""
        return self.well if arm == "well" else self.poor

    def with_arm(self, arm: Arm, value: InputValue) -> TcoInput:
        """A copy with one project's value replaced."""
        return replace(self, well=value) if arm == "well" else replace(self, poor=value)

    @property
    def effect_basis(self) -> Basis:
        """The basis of the difference between the projects: the weaker of the two values' bases (an effect is
        measured only when both sides are)."""
        return max(self.well.basis, self.poor.basis, key=BASES.index)

    @property
    def differs(self) -> bool:
        """Whether the two projects differ in this input (only such inputs can carry the headline difference)."""
        return self.well.value != self.poor.value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"name": self.name, "unit": self.unit, "meaning": self.meaning, "well": self.well.to_dict(),
                "poor": self.poor.to_dict(), "effect_basis": self.effect_basis}


@dataclass(frozen=True)
class Plan:
    """What the inputs are multiplied by: the horizon and the traffic over it (truecost.toml `[target]`)."""

    horizon_months: int
    requests: float


def project_costs(values: Mapping[str, float], plan: Plan) -> dict[str, float]:
    """Horizon-long dollars of one project, by component, from its input values (pure)."""
    v, months = values, plan.horizon_months
    one_run = v["training_run_usd"] / (1.0 - v["duplicate_share"]) / v["utilisation_factor"] \
        / (1.0 - v["failed_run_share"])
    bad = min(1.0, v["bad_output_rate"] * v.get("bad_output_ratio", 1.0))
    review = plan.requests * bad * v["reviewed_share"] * v["minutes_per_fix"] / 60.0 * v["reviewer_usd_per_hour"]
    monitoring = months * ((v["monitoring_hours_per_month"] + v["incident_hours_per_month"])
                           * v["engineer_usd_per_hour"] + v["monitoring_tools_usd_per_month"])
    serving = v["serving_usd_per_month"] * v["serving_overprovision"] * (1.0 - v["routing_saving_share"]) * months
    parts = {"training_usd": one_run, "retraining_usd": one_run * v["retrains_per_year"] * months / 12.0,
             "serving_usd": serving, "human_review_usd": review, "monitoring_usd": monitoring}
    parts["total_usd"] = sum(parts.values())
    return parts


def arm_values(inputs: Mapping[str, TcoInput], arm: Arm) -> dict[str, float]:
    """The plain numbers of one project."""
    return {name: item.arm(arm).value for name, item in inputs.items()}


# -- defaults ---------------------------------------------------------------------------------------------------
# name: (unit, meaning, value in both projects, sensitivity range, reason). Equal in both projects: an assumption
# scales the difference but never carries it (see the module docstring and LEVERS).
_ASSUMED: dict[str, tuple[str, str, float, tuple[float, float], str]] = {
    "utilisation_factor": ("x fitted MFU", "achieved utilisation relative to the estimate's fitted MFU", 1.0,
                           (0.6, 1.2), "runs as the calibrated estimate predicts (the estimate's MFU is fitted on "
                           "published runs)"),
    "failed_run_share": ("share of training spend", "training spend lost to failed, stopped or lost runs", 0.1,
                         (0.0, 0.3), "runs killed by out-of-memory errors, bugs or bad data; assumed"),
    "serving_overprovision": ("x GPUs needed", "serving fleet relative to the serving estimate", 1.0, (1.0, 1.5),
                              "sized from the serving estimate"),
    "routing_saving_share": ("share of serving cost", "serving cost saved by routing at the strong model's quality",
                             0.0, (0.0, 0.0), "no saving is claimed until a route eval or the gateway's log measures "
                             "one"),
    "bad_output_rate": ("share of responses", "bad responses of the plan's well-prepared model (the base rate the "
                        "measured ratio is applied to)", 0.02, (0.005, 0.1),
                        "responses a user flags or a reviewer must fix; assumed"),
    "bad_output_ratio": ("x the well project's rate", "bad-output rate of this project over the well-prepared "
                         "project's (the relative effect of preparation)", 1.0, (1.0, 1.0),
                         "no effect of preparation on bad outputs is claimed until reviews of both projects "
                         "measure one"),
    "reviewed_share": ("share of bad outputs", "bad outputs a person samples and fixes", 0.02, (0.01, 0.05),
                       "teams review ~1-5% of bad outputs; the rest go unnoticed"),
    "minutes_per_fix": ("minutes", "time to read, judge and correct one bad output", 5.0, (2.0, 10.0),
                        "a skilled reviewer with the context at hand"),
    "reviewer_usd_per_hour": ("USD/hour", "loaded cost of a skilled reviewer", 40.0, (25.0, 60.0),
                              "US median ~$30/h wage plus overheads"),
    "monitoring_hours_per_month": ("hours/month", "engineer time on dashboards, alerts and drift checks", 8.0,
                                   (4.0, 16.0), "a day a month watching the model"),
    "incident_hours_per_month": ("hours/month", "firefighting regressions", 4.0, (1.0, 10.0),
                                 "half a day a month"),
    "engineer_usd_per_hour": ("USD/hour", "loaded cost of an ML engineer", 100.0, (60.0, 150.0),
                              "loaded cost of an ML engineer"),
    "monitoring_tools_usd_per_month": ("USD/month", "hosted metrics and logging", 200.0, (0.0, 500.0),
                                       "a hosted metrics and logging plan"),
}


@dataclass(frozen=True)
class Lever:
    """An optional assumption: a value of one project that nothing measured or sourced, off until a user sets it."""

    input: str
    arm: Arm
    value: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the override that turns it on."""
        return {"set": f"{self.arm}.{self.input}={self.value:g}", "input": self.input, "arm": self.arm,
                "value": self.value, "basis": "assumed", "reason": self.reason}


# Beliefs about what poor preparation costs that no run here measures and no source we verified states. Earlier
# versions applied them by default; they carried almost the whole headline, so they are now opt-in.
LEVERS: tuple[Lever, ...] = (
    Lever("bad_output_ratio", "poor", 3.0, "untested models ship ~3x more defects (a belief, not a measurement; "
          "reviews of both models measure it)"),
    Lever("minutes_per_fix", "poor", 8.0, "without tooling a fix takes longer"),
    Lever("incident_hours_per_month", "poor", 30.0, "regressions nobody measured are found by users"),
    Lever("monitoring_hours_per_month", "poor", 4.0, "the poorly prepared project spends less time watching"),
    Lever("monitoring_tools_usd_per_month", "poor", 0.0, "the poorly prepared project runs without tools"),
    Lever("utilisation_factor", "poor", 0.6, "default settings, small micro-batches, no profiling"),
    Lever("failed_run_share", "poor", 1 / 3, "no pre-flight memory checks or small pilots"),
    Lever("serving_overprovision", "poor", 1.5, "a fixed fleet sized by guesswork, no autoscaling"),
    Lever("retrains_per_year", "poor", 12.0, "retraining on a monthly calendar, whether needed or not"),
)


def _assumed(name: str) -> InputValue:
    _unit, _meaning, value, (low, high), reason = _ASSUMED[name]
    return InputValue(value, "assumed", reason, low=low, high=high)


def _estimate_inputs(cfg: Config) -> tuple[dict[str, TcoInput], dict[str, Any]]:
    """The inputs the estimate module supplies (sourced: the calibrated model on the dated catalogue)."""
    from truecost.estimate.costing import target_spec
    from truecost.estimate.training import estimate_training

    base = estimate_training(target_spec(cfg), with_levers=False)
    serving = _serving(cfg)
    cost = base.cost_usd
    run = InputValue(cost["p50"], "sourced", f"truecost estimate of one run of {base.model} on {base.gpu} (p50; "
                     "calibrated on published runs, dated GPU prices); range p10-p90", low=cost["p10"],
                     high=cost["p90"])
    serve = InputValue(serving["usd_per_month"], "sourced", f"truecost serving estimate: {serving['gpus']} GPU(s) "
                       "for [target] traffic at the catalogue's dated price; no range stated")
    inputs = {"training_run_usd": TcoInput("training_run_usd", "USD", "one training run of the target plan", run, run),
              "serving_usd_per_month": TcoInput("serving_usd_per_month", "USD/month", "serving the target traffic",
                                                serve, serve)}
    return inputs, {"model": base.model, "gpu": base.gpu, "training_run_p50_usd": cost["p50"], "serving": serving}


def _plan_inputs(cfg: Config) -> dict[str, TcoInput]:
    """Inputs whose defaults come from truecost.toml `[target]` or a published figure."""
    from truecost.estimate.published import published_figure

    t = cfg.target
    retrains = InputValue(t.retrains_per_year, "assumed", "[target].retrains_per_year",
                          low=max(0.0, t.retrains_per_year / 2), high=t.retrains_per_year * 2)
    dup = published_figure("web_corpus_duplicate_document_share")
    dup_poor = InputValue(dup.value, "sourced", f"uncurated web-scale text; {dup.citation()}", low=0.05,
                          high=dup.value)
    dup_well = InputValue(0.0, "assumed", "duplicates and junk removed by `truecost curate` before training",
                          low=0.0, high=0.05)
    return {"retrains_per_year": TcoInput("retrains_per_year", "runs/year", "retraining runs a year",
                                          retrains, retrains),
            "duplicate_share": TcoInput("duplicate_share", "share of training tokens",
                                        "training tokens that curation removes (duplicates and junk)",
                                        dup_well, dup_poor)}


def default_inputs(config: Config) -> tuple[dict[str, TcoInput], dict[str, Any]]:
    """Every TCO input with its default (sourced or assumed) value per project, and the estimate's context."""
    inputs, context = _estimate_inputs(config)
    inputs.update(_plan_inputs(config))
    for name, (unit, meaning, *_rest) in _ASSUMED.items():
        inputs[name] = TcoInput(name, unit, meaning, _assumed(name), _assumed(name))
    return inputs, context


# -- overrides and measurements -----------------------------------------------------------------------------------
def apply_overrides(inputs: Mapping[str, TcoInput], overrides: Mapping[str, Any], origin: str
                    ) -> tuple[dict[str, TcoInput], list[str]]:
    """Set user values (basis assumed); an override of a measured value is ignored and reported."""
    out, ignored = dict(inputs), []
    for key, raw in overrides.items():
        side, _, name = str(key).rpartition(".")
        if name not in out or side not in ("", "well", "poor"):
            raise UserError(f"unknown TCO input {key!r}; choose from {', '.join(sorted(out))} "
                            "(prefix with well. or poor. for one project)")
        number = _number(key, raw)
        for arm in ARMS:
            if side not in ("", arm):
                continue
            current = out[name].arm(arm)
            if current.basis == "measured":
                ignored.append(f"{arm}.{name}={number:g} from {origin}: measured {current.value:g} "
                               f"(runs {', '.join(current.run_ids)}) is kept")
                continue
            low = min(number, current.low) if current.low is not None else None
            high = max(number, current.high) if current.high is not None else None
            out[name] = out[name].with_arm(arm, InputValue(number, "assumed", f"set in {origin}", low=low,
                                                           high=high))
    return out, ignored


def _number(key: str, raw: Any) -> float:
    try:
        number = float(raw)
    except (TypeError, ValueError) as exc:
        raise UserError(f"TCO input {key!r} must be a number, got {raw!r}") from exc
    if not number >= 0 or number == float("inf"):  # NaN fails the first test
        raise UserError(f"TCO input {key!r} must be a non-negative finite number, got {raw!r}")
    return number


def apply_measurements(inputs: Mapping[str, TcoInput], measurements: Sequence[Measurement]) -> dict[str, TcoInput]:
    """Replace each measured (input, project) value; a measurement of an unknown input is a programming error."""
    out = dict(inputs)
    for m in measurements:
        value = InputValue(m.value, "measured", m.how, run_ids=tuple(m.run_ids), low=m.low, high=m.high)
        out[m.input] = out[m.input].with_arm(m.arm, value)
    return out


def _direction(item: TcoInput) -> int:
    """The sign of poor minus well: the direction the defaults assume preparation moves this input."""
    gap = item.poor.value - item.well.value
    return (gap > 0) - (gap < 0)


def align_to_measurements(inputs: Mapping[str, TcoInput], defaults: Mapping[str, TcoInput]
                          ) -> tuple[dict[str, TcoInput], list[str]]:
    """Where one project's value is measured and the other's is not, the unmeasured value may not reverse (or
    invent) the effect the defaults assume: it is set to the measured value instead, a null effect, and said so.

    E.g. a review measures the well-prepared model's bad-output rate at 0.5: assuming the poorly prepared one ships
    only 0.06 would credit poor preparation with a saving nothing measured.
    """
    out, notes = dict(inputs), []
    for name, item in inputs.items():
        measured = [arm for arm in ARMS if item.arm(arm).basis == "measured"]
        if len(measured) != 1:
            continue
        known: Arm = measured[0]
        other: Arm = "poor" if known == "well" else "well"
        assumed_direction, now = _direction(defaults[name]), _direction(item)
        if now == assumed_direction and now != 0:
            continue
        m, a = item.arm(known), item.arm(other)
        if a.value == m.value:
            continue
        out[name] = item.with_arm(other, InputValue(m.value, "assumed", f"set to the measured {known} value "
                                                    f"{m.value:.4g}: the {a.basis} {a.value:.4g} would "
                                                    f"{'reverse' if assumed_direction else 'invent'} the effect",
                                                    low=m.value, high=m.value))
        notes.append(f"{other}.{name}: {a.basis} {a.value:.4g} replaced by the measured {known} value {m.value:.4g}, "
                     f"since it would {'reverse' if assumed_direction else 'invent'} the effect the defaults assume")
    return out, notes


def _config_overrides(config: Config) -> dict[str, Any]:
    from truecost.estimate.settings import estimate_settings

    raw = estimate_settings(config).tco
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("well", "poor") and isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def _check_domain(inputs: Mapping[str, TcoInput]) -> None:
    """Shares below 1 and a positive utilisation, whichever basis set them (the formula divides by them)."""
    for arm in ARMS:
        for name in ("duplicate_share", "failed_run_share"):
            if inputs[name].arm(arm).value >= 1.0:
                raise UserError(f"{arm}.{name} must be below 1, got {inputs[name].arm(arm).value:g}")
        # Shares of a whole: above 1, routing would make serving cost negative and review would fix more than exists.
        for name in ("routing_saving_share", "reviewed_share", "bad_output_rate"):
            if inputs[name].arm(arm).value > 1.0:
                raise UserError(f"{arm}.{name} is a share and must be at most 1, got {inputs[name].arm(arm).value:g}")
        if inputs["utilisation_factor"].arm(arm).value <= 0:
            raise UserError(f"{arm}.utilisation_factor must be above 0")


# -- the result -----------------------------------------------------------------------------------------------------
@dataclass
class TcoResult:
    """Both projects' costs, every input with its basis, the difference split by basis, and its sensitivity."""

    horizon_months: int
    model: str
    gpu: str
    target: dict[str, Any]
    inputs: dict[str, TcoInput]
    well: dict[str, float]
    poor: dict[str, float]
    difference_usd: float
    by_basis: dict[str, float]
    by_input: dict[str, float]
    sensitivity: list[SensitivityRow]
    sensitivity_range_usd: tuple[float, float]
    context: dict[str, Any] = field(default_factory=dict)
    ignored_overrides: list[str] = field(default_factory=list)
    aligned: list[str] = field(default_factory=list)  # unmeasured values set to the other project's measurement
    ledger: dict[str, Any] | None = None

    def measured_lines(self) -> list[dict[str, Any]]:
        """One row per (input, project) value with its basis, value, unit, run ids and source: the listing the
        CLI and the report print."""
        rows = []
        for item in self.inputs.values():
            for arm in ARMS:
                v = item.arm(arm)
                rows.append({"input": item.name, "arm": arm, "value": v.value, "unit": item.unit,
                             "basis": v.basis, "run_ids": list(v.run_ids), "source": v.source})
        return sorted(rows, key=lambda r: (BASES.index(r["basis"]), r["input"], r["arm"]))

    def optional_levers(self) -> list[Lever]:
        """The opt-in assumptions (`LEVERS`) not yet applied: their input is neither measured nor already set."""
        return [lever for lever in LEVERS if lever.input in self.inputs and not self.inputs[lever.input].differs
                and self.inputs[lever.input].arm(lever.arm).basis != "measured"]

    def to_dict(self) -> dict[str, Any]:
        """The `estimate tco --json` document: the earlier keys plus inputs, headline, sensitivity."""
        low, high = self.sensitivity_range_usd
        return {
            "horizon_months": self.horizon_months, "model": self.model, "gpu": self.gpu, "target": self.target,
            "well": self.well, "poor": self.poor, "difference_usd": self.difference_usd,
            "poor_over_well": self.poor["total_usd"] / self.well["total_usd"] if self.well["total_usd"] else None,
            "training_run_p50_usd": self.context.get("training_run_p50_usd"),
            "serving": self.context.get("serving"),
            "headline": {"difference_usd": self.difference_usd, "by_basis": dict(self.by_basis),
                         "by_input": dict(self.by_input),
                         "attribution": "Shapley values of the inputs that differ between the projects; each "
                                        "input's share counts under the weaker basis of its two values"},
            "inputs": [item.to_dict() for item in self.inputs.values()],
            "lines": self.measured_lines(),
            "sensitivity": {"rows": [row.to_dict() for row in self.sensitivity],
                            "range_usd": {"low": low, "high": high},
                            "method": "each assumed or sourced value moved alone across its stated range, and each "
                                      "measured value with a 95% interval across it (basis measured); range_usd "
                                      "moves every assumed or sourced value at once to the ends that lower or raise "
                                      "the difference (measured values stay)"},
            "assumptions": [_assumption_row(item) for item in self.inputs.values()],
            "optional_levers": [lever.to_dict() for lever in self.optional_levers()],
            "ignored_overrides": list(self.ignored_overrides),
            "aligned_to_measurements": list(self.aligned),
            "ledger": self.ledger,
        }


def _assumption_row(item: TcoInput) -> dict[str, Any]:
    """The earlier `assumptions` row (name, well, poor, unit, reason) with each side's basis added."""
    return {"name": item.name, "well": item.well.value, "poor": item.poor.value, "unit": item.unit,
            "reason": f"well: {item.well.source}; poor: {item.poor.source}" if item.well.source != item.poor.source
            else item.well.source, "well_basis": item.well.basis, "poor_basis": item.poor.basis}


def build_tco(config: Config, overrides: Mapping[str, Any] | None = None,
              measurements: Sequence[Measurement] = (), ledger_info: dict[str, Any] | None = None) -> TcoResult:
    """The TCO from defaults, then truecost.toml and `overrides`, then measurements (which win)."""
    from truecost.estimate.tco_analysis import attribute, sensitivity
    from truecost.units import DAYS_PER_MONTH

    defaults, context = default_inputs(config)
    inputs = apply_measurements(defaults, measurements)
    inputs, ignored = apply_overrides(inputs, _config_overrides(config), "truecost.toml [estimate.tco]")
    inputs, more = apply_overrides(inputs, overrides or {}, "the overrides given")
    inputs, aligned = align_to_measurements(inputs, defaults)
    _check_domain(inputs)
    t = config.target
    plan = Plan(horizon_months=t.horizon_months, requests=t.requests_per_day * DAYS_PER_MONTH * t.horizon_months)
    well, poor = project_costs(arm_values(inputs, "well"), plan), project_costs(arm_values(inputs, "poor"), plan)
    difference = poor["total_usd"] - well["total_usd"]
    by_input, by_basis = attribute(inputs, plan)
    rows, span = sensitivity(inputs, plan)
    return TcoResult(
        horizon_months=t.horizon_months, model=context["model"], gpu=context["gpu"],
        target={"training_tokens": t.training_tokens, "method": t.method, "requests_per_day": t.requests_per_day,
                "prompt_tokens": t.prompt_tokens, "output_tokens": t.output_tokens},
        inputs=inputs, well={k: round(x, 2) for k, x in well.items()}, poor={k: round(x, 2) for k, x in poor.items()},
        difference_usd=round(difference, 2), by_basis=by_basis, by_input=by_input, sensitivity=rows,
        sensitivity_range_usd=span, context=context, ignored_overrides=ignored + more, aligned=aligned,
        ledger=ledger_info)


def tco(config: Config | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Horizon-long dollars for both projects from defaults and overrides only (no ledger); `TcoResult.to_dict()`.
    `config` None: the defaults."""
    return build_tco(config if config is not None else Config(), overrides).to_dict()


def tco_from_ledger(ledger: Ledger, *, run_tree: str | None = None, arms: Mapping[str, Arm] | None = None,
                    config: Config | None = None, overrides: Mapping[str, Any] | None = None) -> TcoResult:
    """The user's TCO with every input the ledger measured taken from it.

    Contract (the demo and `truecost estimate tco --from-ledger` call this):
    - `ledger`: an open `truecost.ledger.Ledger`. `run_tree`: a run id (or unique prefix): only that run and its
      descendants are read (the demo passes its own `demo` run id); None reads every run and request.
    - `arms`: run id (or prefix) -> "well" | "poor"; a run's descendants inherit its project, and a run named
      here is read even when it lies outside `run_tree`. Without it a run's project is `params["tco_arm"]` or
      `results["tco_arm"]` on it or an ancestor; an untagged run is the user's own, well-prepared project, except
      curate and route runs, whose measurements define both sides (see `truecost.estimate.tco_ledger`).
    - `config`: the project (`[target]` is the plan the measurements are carried to); None: the defaults.
    - `overrides`: {"poor.bad_output_rate": 0.1, ...} for inputs nothing measured; measured values are kept and
      the ignored override is listed in `ignored_overrides`.
    Returns a `TcoResult`: `.difference_usd` (poor minus well over the horizon), `.by_basis` {"measured",
    "sourced", "assumed"} summing to the difference, `.by_input` (Shapley value per input), `.inputs[name].well /
    .poor` (`InputValue` with `basis`, `source` and `run_ids`), `.sensitivity` (rows with the difference at each
    end of an assumption's range) and `.sensitivity_range_usd`; `.to_dict()` is the `--json` document, whose
    `headline` is `{"difference_usd", "by_basis", "by_input"}`. Raises UserError for an unknown run id or input.
    """
    from truecost.estimate.tco_ledger import read_measurements

    cfg = config if config is not None else Config()
    measurements, info = read_measurements(ledger, run_tree=run_tree, arms=arms, config=cfg)
    return build_tco(cfg, overrides, measurements, ledger_info=info)


def _serving(cfg: Config) -> dict[str, Any]:
    """The serving estimate of the target model at the configured traffic on the configured GPU."""
    from truecost.estimate.costing import target_spec
    from truecost.estimate.serving import estimate_serving
    from truecost.estimate.training import resolve

    t = cfg.target
    arch, gpu = resolve(target_spec(cfg))
    est = estimate_serving(arch, gpu, requests_per_day=t.requests_per_day, prompt_tokens=t.prompt_tokens,
                           output_tokens=max(1, t.output_tokens), pricing=cfg.hardware.pricing,
                           price_per_gpu_hour=cfg.hardware.price_per_gpu_hour)
    return {"gpus": est.gpus, "usd_per_month": est.usd_per_month, "usd_per_1m_tokens": est.usd_per_1m_tokens}
