"""Utilisation priors: the fitted model of MFU the training estimate uses, and a user's calibration of it.

Model (one set of coefficients for every run; features in `truecost.estimate.utilisation`):

    log(MFU_steady) = sum_f  b_f * x_f(run)  + offset(user, GPU)
    MFU_end_to_end  = MFU_steady * goodput(gpus)
    goodput(gpus)   = 1 / (1 + failures_per_gpu_hour * gpus * hours_lost_per_failure)

MFU counts model FLOPs (matmuls + attention, no recomputation) against the dense 16-bit peak. The goodput term is
not fitted: its constants come from the failure rate Meta published for Llama 3. How the coefficients are fitted
and validated (grouped by organisation) is in `truecost.estimate.fitting`; the p10-p90 band is +-1.2816 sigma in log
space, sigma being the RMS of the organisation-grouped cross-validation residuals. `offsets` is what
`truecost estimate calibrate` learned from the user's own ledger runs (0 when none).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from truecost.errors import UserError
from truecost.estimate.utilisation import RunShape, log_mfu

Z90 = 1.2816  # standard-normal quantile of 0.9
ALL_GPUS = "*"  # offsets key for a user's offset on every GPU type
USER_PRIORS_FILENAME = "truecost-priors.json"  # beside truecost.toml


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
    run_sd: float = 0.25  # scatter of one organisation's runs around its own level (log MFU)
    organisation_sd: float = 0.25  # scatter of organisations' levels around the model (log MFU)
    offsets: dict[str, float] = field(default_factory=dict)  # log-MFU offset per GPU name (or ALL_GPUS)
    calibration: dict[str, Any] = field(default_factory=dict)  # what `estimate calibrate` read, when it ran

    def offset(self, gpu: str) -> float:
        """The user's learned log-MFU offset for this GPU type: its own when calibrated, else the all-GPU one."""
        return self.offsets.get(gpu, self.offsets.get(ALL_GPUS, 0.0))

    def steady_mfu(self, shape: RunShape) -> float:
        """Model-FLOPs utilisation while the job is running (before failures and restarts)."""
        return math.exp(log_mfu(self.coefficients, shape) + self.offset(shape.gpu))

    def goodput(self, gpus: int) -> float:
        """Share of paid GPU time that advances training, given how often a cluster of `gpus` fails."""
        return 1.0 / (1.0 + self.failures_per_gpu_hour * gpus * self.hours_lost_per_failure)

    def mfu(self, shape: RunShape, gpus: int) -> float:
        """End-to-end MFU: the p50 of what a run of this shape achieves over its paid GPU-hours."""
        return min(0.75, self.steady_mfu(shape) * self.goodput(gpus))

    def band(self) -> tuple[float, float]:
        """Multipliers on the p50 GPU-hours that give p10 and p90."""
        return math.exp(-Z90 * self.sigma_log), math.exp(Z90 * self.sigma_log)


NOTES = {
    "failures_per_gpu_hour": "Llama 3 paper (arXiv 2407.21783) Sec 3.3.4: 419 unexpected interruptions in 54 days "
                             "on 16,384 H100s = 1.97e-5 per GPU-hour",
    "hours_lost_per_failure": "chosen so that 16,384 GPUs keep the >90% effective training time the Llama 3 paper "
                              "reports: 1/(1 + 1.97e-5*16384*0.34) = 0.90",
    "fp8_speedup": "end-to-end FP8 vs BF16 speed-up on Hopper reported by NVIDIA Transformer Engine / DeepSeek-V3 "
                   "work: ~1.3x, far below the 2x datasheet ratio (not fitted: no FP8 run among the fitted runs)",
    "qlora_slowdown": "4-bit dequantisation in every matmul: QLoRA steps run ~1.3x slower than 16-bit LoRA "
                      "(bitsandbytes/Unsloth benchmarks)",
    "cpu_mfu": "share of a CPU core's peak PyTorch reaches on small-model training (not fitted: no published runs)",
    "recompute_time_factor": "full recomputation repeats the forward pass (+1/3 of model FLOPs); selective "
                             "recomputation of the attention core costs ~1-3% and is the calibrated baseline",
}
_STORED_ONLY = ("procedure", "features", "selection", "leave_one_out", "grouped_cv", "nested_grouped_cv", "heldout")


def priors_from_dict(data: dict[str, Any]) -> Priors:
    """Priors from their JSON form (the shipped file, or a user's calibrated copy)."""
    data = {k: v for k, v in data.items() if k not in _STORED_ONLY}
    data["fitted_on"] = tuple(data.get("fitted_on", ()))
    try:
        return Priors(**data)
    except TypeError as exc:
        raise UserError(f"priors file: unexpected or missing field ({exc})") from exc


@lru_cache(maxsize=1)
def _shipped() -> Priors:
    text = resources.files("truecost.estimate").joinpath("data", "priors.json").read_text(encoding="utf-8")
    return priors_from_dict(json.loads(text))


def load_priors(user_file: str | Path | None = None) -> Priors:
    """The fitted priors shipped with truecost (`data/priors.json`), with a user's calibrated offsets from
    `user_file` (written by `truecost estimate calibrate`) when given and present."""
    shipped = _shipped()
    if user_file is None or not Path(user_file).is_file():
        return shipped
    try:
        data = json.loads(Path(user_file).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{user_file}: not valid JSON ({exc}); rerun `truecost estimate calibrate`") from exc
    if not isinstance(data, dict):
        raise UserError(f"{user_file}: expected a JSON object; rerun `truecost estimate calibrate`")
    offsets = data.get("offsets")
    # A NaN offset silently changed every estimate; a string, a list or a huge number was a traceback.
    if not isinstance(offsets, dict | None) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and abs(v) <= 10 for v in (offsets or {}).values()):
        raise UserError(f"{user_file}: 'offsets' must map GPU names to log-MFU offsets between -10 and 10; rerun "
                        "`truecost estimate calibrate`")
    return replace(shipped, offsets={str(k): float(v) for k, v in (offsets or {}).items()},
                   calibration=dict(data.get("calibration") or {}))


def clear_priors_cache() -> None:
    """Forget the shipped priors read so far (after a refit rewrote the file)."""
    _shipped.cache_clear()


def imputed_gpus(flops: float, peak_tflops: float) -> int:
    """GPU count assumed when a run does not disclose one: enough to finish in 30 days at 40% MFU."""
    return max(1, int(round(flops / (0.40 * peak_tflops * 1e12 * 30 * 24 * 3600.0))))
