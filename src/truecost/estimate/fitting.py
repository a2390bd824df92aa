"""Fitting and validating the utilisation model on published runs (needs the `estimate` extra: numpy, scipy).

Procedure (`python -m truecost.estimate.fitting [runs.csv]` rewrites `data/priors.json`):

1. Observations: every pre-training run of the shared table with numeric tokens and GPU-hours on a catalogued GPU,
   tiers A/A- at weight 1 and tier B at 0.5; its steady 16-bit-equivalent MFU (FP8 runs divided by the FP8
   speed-up, failures and restarts taken out with the goodput term).
2. Fit: maximum a posteriori on log MFU, a robust soft-L1 loss (noise scale 0.25) plus Gaussian priors on each
   coefficient (sd 10 on the intercept and hardware terms; 0.2-0.3 on the rest, which shrinks a feature to zero
   unless the runs need it).
3. Validation holds out whole organisations (Meta, MosaicML, DeepSeek, ...): fit on the others, predict the held-out
   organisation's runs. The band's sigma is the RMS of those residuals; coverage is judged with a sigma from an
   inner grouped cross-validation of the training folds only (nested), so no run sees its own error.
4. Choice: a short, pre-declared list of feature sets (CANDIDATES) is scored by that grouped cross-validation's
   median error; the smallest set within 1 point of the best wins. The held-out runs (`data/heldout_runs.csv`)
   take no part in fitting or choosing and are scored once, at the end.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import date
from pathlib import Path
from typing import Any

from truecost.errors import MissingExtra
from truecost.estimate.calibration import NOTES, Z90, Priors, clear_priors_cache, load_priors
from truecost.estimate.runs import JUDGED_TIERS, PublishedRun, RunObservation, heldout_runs, observe, read_runs
from truecost.estimate.utilisation import features

PRIOR_SD = {"intercept": 10.0, "hardware": 10.0, "hardware_x_size": 0.2, "small_memory": 0.3,
            "moe_sparsity": 0.3, "interconnect": 0.3, "sequence": 0.3}
NOISE_SD = 0.25
CANDIDATES: dict[str, tuple[str, ...]] = {
    "hardware": ("intercept", "hardware", "hardware_x_size"),
    "hardware+memory+moe": ("intercept", "hardware", "hardware_x_size", "small_memory", "moe_sparsity"),
    "hardware+memory+moe+interconnect": ("intercept", "hardware", "hardware_x_size", "small_memory",
                                         "moe_sparsity", "interconnect"),
    "hardware+memory+moe+sequence": ("intercept", "hardware", "hardware_x_size", "small_memory", "moe_sparsity",
                                     "sequence"),
}
DEFAULT_RUNS = "/work/shared/data/published_runs/runs.csv"

def fit_coefficients(obs: Sequence[RunObservation], names: tuple[str, ...]) -> dict[str, float]:
    """MAP coefficients of log steady MFU on the named features (robust loss, Gaussian priors)."""
    try:
        import numpy as np
        from scipy.optimize import least_squares
    except ImportError as exc:
        raise MissingExtra("scipy", "estimate", "refitting the utilisation priors") from exc
    x = np.array([[features(o.shape)[n] for n in names] for o in obs])
    y = np.array([o.log_steady_mfu for o in obs])
    w = np.sqrt(np.array([o.weight for o in obs]))
    tau = np.array([PRIOR_SD[n] for n in names])

    def residuals(b: Any) -> Any:
        return np.concatenate([w * (x @ b - y) / NOISE_SD, b / tau])

    result = least_squares(residuals, np.zeros(len(names)), loss="soft_l1", f_scale=1.0)
    return dict(zip(names, (float(v) for v in result.x), strict=True))


def predict(coefficients: dict[str, float], ob: RunObservation) -> float:
    """Predicted log steady MFU of one observation."""
    x = features(ob.shape)
    return sum(value * x[name] for name, value in coefficients.items())


def _rms(values: Sequence[float]) -> float:
    return math.sqrt(sum(v * v for v in values) / max(1, len(values)))


def grouped_residuals(obs: Sequence[RunObservation], names: tuple[str, ...]) -> list[tuple[RunObservation, float]]:
    """(observation, log(true MFU / predicted)) with each organisation predicted by a fit on the others."""
    out = []
    for group in sorted({o.run.organisation for o in obs}):
        train = [o for o in obs if o.run.organisation != group]
        coefficients = fit_coefficients(train, names)
        out += [(o, o.log_steady_mfu - predict(coefficients, o)) for o in obs if o.run.organisation == group]
    return out


def leave_one_out(obs: Sequence[RunObservation], names: tuple[str, ...]) -> list[tuple[RunObservation, float]]:
    """(observation, residual) with each run predicted by a fit on all the others."""
    return [(o, o.log_steady_mfu - predict(fit_coefficients([p for p in obs if p is not o], names), o))
            for o in obs]


def nested_grouped_cv(obs: Sequence[RunObservation], names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Grouped CV whose band per held-out organisation comes from a grouped CV of the other organisations only."""
    rows = []
    for group in sorted({o.run.organisation for o in obs}):
        train = [o for o in obs if o.run.organisation != group]
        inner = [r for o, r in grouped_residuals(train, names) if o.run.tier in JUDGED_TIERS]
        sigma = _rms(inner)
        coefficients = fit_coefficients(train, names)
        for o in (o for o in obs if o.run.organisation == group):
            residual = o.log_steady_mfu - predict(coefficients, o)
            rows.append(_row(o, residual, sigma))
    return rows


def _row(ob: RunObservation, residual: float, sigma: float) -> dict[str, Any]:
    """One validation row: GPU-hours error of p50 (= exp(residual) - 1) and whether the truth is inside p10-p90."""
    return {"model": ob.run.model, "organisation": ob.run.organisation, "tier": ob.run.tier,
            "log_residual": residual, "gpu_hours_error": math.exp(residual) - 1.0,
            "inside": abs(residual) <= Z90 * sigma}


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Median absolute GPU-hours error of p50 and the share of runs inside [p10, p90]."""
    errors = [abs(float(r["gpu_hours_error"] if "gpu_hours_error" in r else r["error"])) for r in rows]
    return {"runs": len(rows), "median_abs_error": statistics.median(errors),
            "coverage": sum(bool(r["inside"]) for r in rows) / len(rows)}


def variance_components(pairs: Sequence[tuple[RunObservation, float]]) -> tuple[float, float]:
    """(run sd, organisation sd) of grouped-CV log residuals: the pooled scatter of runs around their organisation's
    mean, and the scatter of organisation means beyond what that run noise explains (method of moments)."""
    by_org: dict[str, list[float]] = {}
    for ob, residual in pairs:
        by_org.setdefault(ob.run.organisation, []).append(residual)
    squares = [(r - statistics.fmean(v)) ** 2 for v in by_org.values() if len(v) > 1 for r in v]
    dof = sum(len(v) - 1 for v in by_org.values() if len(v) > 1)
    run_var = sum(squares) / dof if dof else 0.25**2
    means = [statistics.fmean(v) for v in by_org.values()]
    excess = statistics.pvariance(means) - run_var * statistics.fmean(1 / len(v) for v in by_org.values())
    return math.sqrt(run_var), math.sqrt(max(excess, 0.05**2))


def choose_features(obs: Sequence[RunObservation]) -> tuple[str, dict[str, float]]:
    """The candidate feature set with the lowest grouped-CV median error (judged runs), preferring fewer features
    within one point; returns its name and every candidate's score."""
    scores = {}
    for name, names in CANDIDATES.items():
        residuals = [r for o, r in grouped_residuals(obs, names) if o.run.tier in JUDGED_TIERS]
        scores[name] = statistics.median(abs(math.exp(r) - 1.0) for r in residuals)
    best = min(scores.values())
    chosen = min((n for n in CANDIDATES if scores[n] <= best + 0.01), key=lambda n: len(CANDIDATES[n]))
    return chosen, scores


def fit_priors(runs: Sequence[PublishedRun], base: Priors | None = None, names: tuple[str, ...] | None = None
               ) -> tuple[Priors, dict[str, Any]]:
    """Fit on `runs` with the named features (chosen by grouped CV when None); returns priors and a report with the
    leave-one-out, grouped and nested grouped cross-validation rows."""
    base = base or Priors(coefficients={}, sigma_log=0.3, notes=dict(NOTES))
    obs = [observe(run, base) for run in runs]
    selection: dict[str, float] = {}
    if names is None:
        chosen, selection = choose_features(obs)
        names = CANDIDATES[chosen]
    grouped = grouped_residuals(obs, names)
    judged = [(o, r) for o, r in grouped if o.run.tier in JUDGED_TIERS]
    sigma = _rms([r for _, r in judged])
    run_sd, organisation_sd = variance_components(grouped)
    priors = replace(base, coefficients=fit_coefficients(obs, names), sigma_log=sigma, run_sd=run_sd,
                     organisation_sd=organisation_sd,
                     fitted_on=tuple(r.model for r in runs), notes={**NOTES, **base.notes})
    report = {"features": list(names), "selection": selection,
              "grouped_cv": [_row(o, r, sigma) for o, r in judged],
              "nested_grouped_cv": [r for r in nested_grouped_cv(obs, names) if r["tier"] in JUDGED_TIERS],
              "leave_one_out": [_row(o, r, sigma) for o, r in leave_one_out(obs, names)
                                if o.run.tier in JUDGED_TIERS]}
    return priors, report


def evaluate(runs: Sequence[PublishedRun], priors: Priors | None = None) -> list[dict[str, Any]]:
    """Predicted p10/p50/p90 GPU-hours of each run with the given (default: shipped) priors, beside the truth."""
    from truecost.estimate.runs import run_spec
    from truecost.estimate.training import estimate_training

    rows = []
    for run in runs:
        est = estimate_training(run_spec(run), priors=priors or load_priors(), with_levers=False)
        rows.append({"model": run.model, "organisation": run.organisation, "tier": run.tier, "gpu": run.gpu,
                     "reported_gpu_hours": run.gpu_hours,
                     **{f"{q}_gpu_hours": est.gpu_hours[q] for q in ("p10", "p50", "p90")},
                     "error": est.gpu_hours["p50"] / run.gpu_hours - 1.0,
                     "inside": est.gpu_hours["p10"] <= run.gpu_hours <= est.gpu_hours["p90"]})
    return rows


def main(argv: list[str]) -> None:
    """Refit on a runs CSV and write `data/priors.json` (the shipped priors) with its validation."""
    runs = read_runs(argv[0] if argv else DEFAULT_RUNS)
    priors, report = fit_priors(runs)
    out = asdict(priors)
    out["fitted_date"] = date.today().isoformat()
    out["procedure"] = __doc__
    out.update(report)
    target = Path(__file__).parent / "data" / "priors.json"
    target.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    clear_priors_cache()
    out["heldout"] = evaluate(heldout_runs())
    target.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    for name, score in report["selection"].items():
        print(f"candidate {name:36s} grouped-CV median |error| {score:.1%}")
    for label in ("leave_one_out", "grouped_cv", "nested_grouped_cv"):
        s = summary(report[label])
        print(f"{label:18s} median |error| {s['median_abs_error']:.1%}  coverage {s['coverage']:.0%} (n={s['runs']})")
    s = summary(out["heldout"])
    print(f"held-out runs      median |error| {s['median_abs_error']:.1%}  coverage {s['coverage']:.0%} "
          f"(n={s['runs']})")
    print(f"features {report['features']} coefficients {priors.coefficients} sigma {priors.sigma_log:.3f} -> {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
