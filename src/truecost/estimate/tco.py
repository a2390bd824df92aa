"""Total cost of ownership over a horizon: training, retrains, serving, human review and monitoring,
for a well-prepared and a poorly-prepared project side by side.

Every assumption is a named input with a value for each project and the reason for it; override any of them
in truecost.toml (`[estimate.tco]` applies to both, `[estimate.tco.well]` / `[estimate.tco.poor]` to one) or
with `overrides={"poor.retrains_per_year": 6}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from truecost.config import Config, load_config
from truecost.errors import UserError


@dataclass(frozen=True)
class Assumption:
    """One named TCO input: its value for each project, its unit and why."""

    name: str
    well: float
    poor: float
    unit: str
    reason: str


def default_assumptions(config: Config) -> dict[str, Assumption]:
    """The TCO inputs; values that truecost.toml `[target]` already states are taken from there."""
    t = config.target
    rows = [
        Assumption("retrains_per_year", t.retrains_per_year, max(12.0, 3 * t.retrains_per_year), "runs/year",
                   "well: retrain when monitoring measures drift ([target].retrains_per_year); poor: on a monthly "
                   "calendar, whether needed or not"),
        Assumption("duplicate_share", 0.0, 0.25, "share of tokens",
                   "poor: web-scale data carries 10-30% near-duplicates (Lee et al. 2022; RefinedWeb) that are "
                   "trained on and paid for; well: removed by `truecost curate`"),
        Assumption("utilisation_factor", 1.0, 0.6, "x fitted MFU",
                   "poor: default settings, small micro-batches, no profiling; 40% below the published-run median"),
        Assumption("failed_run_share", 0.1, 0.5, "extra share of training spend",
                   "runs killed by OOM, bugs or bad data; pre-flight memory checks and small pilots keep it low"),
        Assumption("serving_overprovision", 1.0, 1.5, "x GPUs needed",
                   "poor: fixed fleet sized by guesswork with no autoscaling; well: sized from the serving estimate"),
        Assumption("bad_output_rate", 0.02, 0.06, "share of responses",
                   "responses a user flags or a reviewer must fix; untested models ship ~3x more defects"),
        Assumption("reviewed_share", 0.02, 0.02, "share of bad outputs",
                   "share of bad outputs a person samples and fixes (teams review ~1-5%; the rest go unnoticed)"),
        Assumption("minutes_per_fix", 5.0, 8.0, "minutes",
                   "time to read, judge and correct one bad output; without tooling it takes longer"),
        Assumption("reviewer_usd_per_hour", 40.0, 40.0, "USD/hour",
                   "loaded cost of a skilled reviewer (US median ~$30/h wage plus overheads)"),
        Assumption("monitoring_hours_per_month", 8.0, 4.0, "hours/month",
                   "engineer time spent on dashboards, alerts and drift checks"),
        Assumption("incident_hours_per_month", 4.0, 30.0, "hours/month",
                   "firefighting regressions nobody measured; monitoring catches them early"),
        Assumption("engineer_usd_per_hour", 100.0, 100.0, "USD/hour", "loaded cost of an ML engineer"),
        Assumption("monitoring_tools_usd_per_month", 200.0, 0.0, "USD/month",
                   "hosted metrics/logging; the poorly prepared project runs without"),
    ]
    return {a.name: a for a in rows}


def _apply(assumptions: dict[str, Assumption], overrides: dict[str, Any]) -> dict[str, Assumption]:
    out = dict(assumptions)
    for key, value in overrides.items():
        side, _, name = key.rpartition(".")
        if name not in out or side not in ("", "well", "poor"):
            raise UserError(f"unknown TCO assumption {key!r}; choose from {', '.join(sorted(out))} "
                            "(prefix with well. or poor. for one project)")
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise UserError(f"TCO assumption {key!r} must be a number, got {value!r}") from exc
        if number < 0:
            raise UserError(f"TCO assumption {key!r} must be non-negative, got {number}")
        a = out[name]
        out[name] = Assumption(a.name, number if side in ("", "well") else a.well,
                               number if side in ("", "poor") else a.poor, a.unit, a.reason)
    return out


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


def tco(config: Config | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Horizon-long dollars for both projects, by component, with every assumption listed."""
    from truecost.estimate.costing import target_spec
    from truecost.estimate.training import estimate_training

    cfg = config or load_config()
    assumptions = _apply(_apply(default_assumptions(cfg), _config_overrides(cfg)), overrides or {})
    months = cfg.target.horizon_months
    base = estimate_training(target_spec(cfg), with_levers=False)
    serving = _serving(cfg)
    requests = cfg.target.requests_per_day * 365.0 / 12.0 * months
    projects: dict[str, dict[str, float]] = {}
    for side in ("well", "poor"):
        v = {name: getattr(a, side) for name, a in assumptions.items()}
        one_run = base.cost_usd["p50"] / (1.0 - v["duplicate_share"]) / v["utilisation_factor"]
        one_run *= 1.0 + v["failed_run_share"]
        retrains = v["retrains_per_year"] * months / 12.0
        review = requests * v["bad_output_rate"] * v["reviewed_share"] * v["minutes_per_fix"] / 60.0 \
            * v["reviewer_usd_per_hour"]
        monitoring = months * ((v["monitoring_hours_per_month"] + v["incident_hours_per_month"])
                               * v["engineer_usd_per_hour"] + v["monitoring_tools_usd_per_month"])
        parts = {"training_usd": one_run, "retraining_usd": one_run * retrains,
                 "serving_usd": serving["usd_per_month"] * v["serving_overprovision"] * months,
                 "human_review_usd": review, "monitoring_usd": monitoring}
        parts["total_usd"] = sum(parts.values())
        projects[side] = {k: round(x, 2) for k, x in parts.items()}
    return {
        "horizon_months": months, "model": base.model, "gpu": base.gpu,
        "target": {"training_tokens": cfg.target.training_tokens, "method": cfg.target.method,
                   "requests_per_day": cfg.target.requests_per_day, "prompt_tokens": cfg.target.prompt_tokens,
                   "output_tokens": cfg.target.output_tokens},
        "well": projects["well"], "poor": projects["poor"],
        "difference_usd": round(projects["poor"]["total_usd"] - projects["well"]["total_usd"], 2),
        "poor_over_well": projects["poor"]["total_usd"] / projects["well"]["total_usd"],
        "training_run_p50_usd": base.cost_usd["p50"], "serving": serving,
        "assumptions": [a.__dict__ for a in assumptions.values()],
    }


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
