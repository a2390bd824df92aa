"""Utilisation priors fitted to published training runs, and the procedure that fits them.

Model (one set of coefficients for every run):

    log(MFU_steady) = b0 + b1 * g + b2 * g * s          g = ln(peak 16-bit TFLOP/s / 312)   (A100 = 0)
                                                        s = ln(active params / 1e10)
    MFU_end_to_end  = MFU_steady * goodput(gpus)
    goodput(gpus)   = 1 / (1 + failures_per_gpu_hour * gpus * hours_lost_per_failure)

MFU counts model FLOPs (matmuls + attention, no recomputation) against the dense 16-bit peak. The goodput term
is not fitted: its constants come from the failure rate Meta published for Llama 3. The coefficients are a
maximum-a-posteriori fit: a robust (soft-L1) loss on log-MFU residuals plus Gaussian priors that shrink the size
interaction towards zero unless the runs demand it. The p10-p90 band is +-1.2816 sigma in log space, sigma being
the root-mean-square leave-one-out residual, so it is as wide as the model's real out-of-sample error.
Refit with `python -m truecost.estimate.calibration /path/to/runs.csv` (needs numpy and scipy).
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from truecost.errors import MissingExtra, UserError

A100_PEAK_TFLOPS = 312.0
Z90 = 1.2816  # standard-normal quantile of 0.9
FEATURES = ("intercept", "hardware", "hardware_x_size")
FIT_TIERS = ("A", "A-", "B")
JUDGED_TIERS = ("A", "A-")


@dataclass(frozen=True)
class Priors:
    """Everything the training estimate assumes about utilisation, with where each number comes from."""

    coefficients: dict[str, float]
    sigma_log: float
    failures_per_gpu_hour: float = 1.97e-5
    hours_lost_per_failure: float = 0.34
    fp8_speedup: float = 1.3
    qlora_slowdown: float = 1.3
    cpu_mfu: float = 0.3
    recompute_time_factor: dict[str, float] = field(
        default_factory=lambda: {"none": 1.0, "selective": 1.0, "full": 4.0 / 3.0})
    fitted_on: tuple[str, ...] = ()
    fitted_date: str = ""
    notes: dict[str, str] = field(default_factory=dict)

    def steady_mfu(self, peak_tflops_16bit: float, params_active: float) -> float:
        """Model-FLOPs utilisation while the job is running (before failures and restarts)."""
        # Clamp to the range the runs cover (V100 .. B200, 1B .. 400B active) instead of extrapolating.
        g = math.log(min(max(peak_tflops_16bit, 125.0), 2250.0) / A100_PEAK_TFLOPS)
        s = math.log(min(max(params_active, 1e9), 4e11) / 1e10)
        c = self.coefficients
        return math.exp(c["intercept"] + c["hardware"] * g + c["hardware_x_size"] * g * s)

    def goodput(self, gpus: int) -> float:
        """Share of paid GPU time that advances training, given how often a cluster of `gpus` fails."""
        return 1.0 / (1.0 + self.failures_per_gpu_hour * gpus * self.hours_lost_per_failure)

    def mfu(self, peak_tflops_16bit: float, params_active: float, gpus: int) -> float:
        """End-to-end MFU: the p50 of what a run of this shape achieves over its paid GPU-hours."""
        return min(0.75, self.steady_mfu(peak_tflops_16bit, params_active) * self.goodput(gpus))

    def band(self) -> tuple[float, float]:
        """Multipliers on the p50 GPU-hours that give p10 and p90."""
        return math.exp(-Z90 * self.sigma_log), math.exp(Z90 * self.sigma_log)


_NOTES = {
    "failures_per_gpu_hour": "Llama 3 paper (arXiv 2407.21783) Sec 3.3.4: 419 unexpected interruptions in 54 days "
                             "on 16,384 H100s = 1.97e-5 per GPU-hour",
    "hours_lost_per_failure": "chosen so that 16,384 GPUs keep the >90% effective training time the Llama 3 paper "
                              "reports: 1/(1 + 1.97e-5*16384*0.34) = 0.90",
    "fp8_speedup": "end-to-end FP8 vs BF16 speed-up on Hopper reported by NVIDIA Transformer Engine / DeepSeek-V3 "
                   "work: ~1.3x, far below the 2x datasheet ratio",
    "qlora_slowdown": "4-bit dequantisation in every matmul: QLoRA steps run ~1.3x slower than 16-bit LoRA "
                      "(bitsandbytes/Unsloth benchmarks)",
    "cpu_mfu": "share of a CPU core's peak PyTorch reaches on small-model training (not fitted: no published runs)",
    "recompute_time_factor": "full recomputation repeats the forward pass (+1/3 of model FLOPs); selective "
                             "recomputation of the attention core costs ~1-3% and is the calibrated baseline",
}


@lru_cache(maxsize=1)
def load_priors() -> Priors:
    """The fitted priors shipped with truecost (`data/priors.json`)."""
    text = resources.files("truecost.estimate").joinpath("data", "priors.json").read_text(encoding="utf-8")
    data = json.loads(text)
    data["fitted_on"] = tuple(data.get("fitted_on", ()))
    data.pop("procedure", None)
    data.pop("leave_one_out", None)
    return Priors(**data)


@dataclass(frozen=True)
class PublishedRun:
    """One published training run, reduced to what the estimate needs and what it is judged against."""

    model: str
    params_total: float
    params_active: float
    tokens: float
    seq_len: int
    gpu: str
    num_gpus: int | None
    gpu_hours: float
    tier: str
    run_type: str
    precision: str = "bf16"


def _number(text: str) -> float | None:
    """A plain number (`1,720,320`, `1e12`, `15T`, `~7000000`) or None for prose such as `35B x 2 epochs`."""
    from truecost.units import parse_quantity

    cleaned = text.replace(",", "").strip().lstrip("~").strip()
    if not re.fullmatch(r"[0-9.]+(e[+-]?[0-9]+)?[kKmMbBtT]?", cleaned):
        return None
    try:
        return parse_quantity(cleaned)
    except UserError:
        return None


def _precision(text: str) -> str:
    """The training precision a free-text column names (FP8 runs get the FP8 speed-up; the rest are 16-bit)."""
    lowered = text.lower()
    if "fp8" in lowered:
        return "fp8"
    if "fp16" in lowered and "bf16" not in lowered:
        return "fp16"
    return "bf16"


def read_runs(path: str | Path, tiers: tuple[str, ...] = FIT_TIERS, pretrain_only: bool = True
              ) -> list[PublishedRun]:
    """Runs from a published-runs CSV with numeric tokens, GPU-hours and a catalogued GPU."""
    from truecost.estimate.catalogue import find_gpu

    path = Path(path)
    if not path.is_file():
        raise UserError(f"published runs file {path} does not exist")
    runs = []
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            tokens, hours = _number(row.get("tokens", "")), _number(row.get("gpu_hours", ""))
            if tokens is None or hours is None or row.get("reliability_tier") not in tiers:
                continue
            if pretrain_only and not row.get("run_type", "").startswith("pretrain"):
                continue
            try:
                gpu = find_gpu(row["gpu_type"]).name
            except UserError:
                continue
            total = float(row["params_total"])
            gpus = _number(row.get("num_gpus", ""))
            runs.append(PublishedRun(model=row["model"], params_total=total,
                                     params_active=_number(row.get("params_active", "")) or total, tokens=tokens,
                                     seq_len=int(_number(row.get("seq_len", "")) or 2048), gpu=gpu,
                                     num_gpus=int(gpus) if gpus else None, gpu_hours=hours,
                                     tier=row["reliability_tier"], run_type=row["run_type"],
                                     precision=_precision(row.get("precision", ""))))
    return runs


def run_spec(run: PublishedRun) -> Any:
    """The TrainingSpec truecost would be given for this run (catalogue architecture when the name is known)."""
    from truecost.estimate.catalogue import find_model
    from truecost.estimate.training import TrainingSpec

    try:
        model: str | None = find_model(run.model).name
    except UserError:
        model = None
    return TrainingSpec(model=model, params=None if model else run.params_total,
                        active_params=None if model else run.params_active, tokens=run.tokens, gpu=run.gpu,
                        gpus=run.num_gpus or 0, seq_len=run.seq_len, precision=run.precision, method="full",
                        recompute="selective")


def _features(peak: float, active: float) -> list[float]:
    g = math.log(peak / A100_PEAK_TFLOPS)
    return [1.0, g, g * math.log(active / 1e10)]


def _observations(runs: list[PublishedRun], priors: Priors) -> list[tuple[list[float], float, float]]:
    """(features, log steady MFU, weight) per run; tier B counts half."""
    from truecost.estimate.training import model_flops, resolve

    out = []
    for run in runs:
        spec = run_spec(run)
        arch, gpu = resolve(spec)
        flops = model_flops(arch, spec)
        peak = gpu.peak_tflops.get("bf16") or gpu.peak_tflops["fp16"]
        gpus = run.num_gpus or imputed_gpus(flops, peak)
        mfu = flops / (run.gpu_hours * 3600.0 * peak * 1e12)
        if run.precision == "fp8":
            mfu /= priors.fp8_speedup  # express FP8 runs in 16-bit-equivalent utilisation
        out.append((_features(peak, arch.params_active), math.log(mfu / priors.goodput(gpus)),
                    1.0 if run.tier in JUDGED_TIERS else 0.5))
    return out


def imputed_gpus(flops: float, peak_tflops: float) -> int:
    """GPU count assumed when a run does not disclose one: enough to finish in 30 days at 40% MFU."""
    return max(1, int(round(flops / (0.40 * peak_tflops * 1e12 * 30 * 24 * 3600.0))))


PRIOR_SD = {"intercept": 10.0, "hardware": 10.0, "hardware_x_size": 0.2}
NOISE_SD = 0.25


def _fit(obs: list[tuple[list[float], float, float]]) -> dict[str, float]:
    try:
        import numpy as np
        from scipy.optimize import least_squares
    except ImportError as exc:
        raise MissingExtra("scipy", "estimate", "refitting the utilisation priors") from exc
    x = np.array([o[0] for o in obs])
    y = np.array([o[1] for o in obs])
    w = np.sqrt(np.array([o[2] for o in obs]))
    tau = np.array([PRIOR_SD[f] for f in FEATURES])

    def residuals(b: Any) -> Any:
        return np.concatenate([w * (x @ b - y) / NOISE_SD, b / tau])

    result = least_squares(residuals, np.zeros(len(FEATURES)), loss="soft_l1", f_scale=1.0)
    return dict(zip(FEATURES, (float(v) for v in result.x), strict=True))


def fit_priors(runs: list[PublishedRun], base: Priors | None = None) -> tuple[Priors, list[dict[str, Any]]]:
    """Fit the coefficients on `runs`; sigma from leave-one-out residuals. Returns priors and the LOO table."""
    base = base or Priors(coefficients=dict.fromkeys(FEATURES, 0.0), sigma_log=0.3, notes=_NOTES)
    obs = _observations(runs, base)
    coefficients = _fit(obs)
    loo: list[dict[str, Any]] = []
    for i, run in enumerate(runs):
        if run.tier not in JUDGED_TIERS:
            continue
        held = _fit(obs[:i] + obs[i + 1:])
        predicted = sum(c * f for c, f in zip(held.values(), obs[i][0], strict=True))
        residual = obs[i][1] - predicted  # log(true MFU / predicted) = log(predicted hours / true hours)
        loo.append({"model": run.model, "log_residual": residual, "gpu_hours_error": math.exp(residual) - 1.0})
    residuals = [float(r["log_residual"]) for r in loo]
    sigma = math.sqrt(sum(r * r for r in residuals) / max(1, len(residuals)))
    priors = Priors(**{**asdict(base), "coefficients": coefficients, "sigma_log": sigma,
                       "fitted_on": tuple(r.model for r in runs), "notes": {**_NOTES, **base.notes}})
    return priors, loo


def evaluate(runs: list[PublishedRun]) -> list[dict[str, Any]]:
    """Predicted p10/p50/p90 GPU-hours for each run with the shipped priors, beside the reported figure."""
    from truecost.estimate.training import estimate_training

    rows = []
    for run in runs:
        est = estimate_training(run_spec(run))
        rows.append({"model": run.model, "tier": run.tier, "gpu": run.gpu, "reported_gpu_hours": run.gpu_hours,
                     **{f"{q}_gpu_hours": est.gpu_hours[q] for q in ("p10", "p50", "p90")},
                     "error": est.gpu_hours["p50"] / run.gpu_hours - 1.0,
                     "inside": est.gpu_hours["p10"] <= run.gpu_hours <= est.gpu_hours["p90"]})
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Median absolute error of p50 and the share of runs inside [p10, p90]."""
    import statistics

    return {"runs": len(rows), "median_abs_error": statistics.median(abs(r["error"]) for r in rows),
            "coverage": sum(r["inside"] for r in rows) / len(rows)}


def main(argv: list[str]) -> None:
    """Refit on a runs CSV and write `data/priors.json` (the shipped priors)."""
    from datetime import date

    path = argv[0] if argv else "/work/shared/data/published_runs/runs.csv"
    runs = read_runs(path)
    priors, loo = fit_priors(runs)
    out = asdict(priors)
    out["fitted_date"] = date.today().isoformat()
    out["procedure"] = __doc__
    out["leave_one_out"] = loo
    target = Path(__file__).parent / "data" / "priors.json"
    target.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    load_priors.cache_clear()
    for row in loo:
        print(f"LOO {row['model']:32s} {row['gpu_hours_error']:+.3f}")
    print(f"coefficients {priors.coefficients} sigma_log {priors.sigma_log:.3f} -> {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
