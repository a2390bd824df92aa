"""`truecost estimate calibrate`: learn the user's own utilisation from measured training runs in the ledger.

What is read (each key read defensively; a run lacking one is skipped and the result says which and why):
- runs of kind `train` or `tune`, status `completed` or `stopped`, started from step 0 (`results.start_step`);
- `results.measured_vs_estimate.device_hours` (`estimated`: the pre-flight estimate for the whole planned run, made
  with the shipped priors; `measured`: GPU-hours metered) and the planned tokens (`params.config` `max_steps`,
  `micro_batch`, `grad_accum`, `seq_len` times `params.world_size`) against `run.tokens` trained: their ratio is
  measured MFU over predicted MFU, the same utilisation factor the TCO reads (`tco_ledger._utilisation`);
- `params.estimate.gpu` (the catalogue GPU the run was estimated on); `params.world_size` (the scale).
A run whose device is the CPU says nothing of a GPU and is skipped. The HF Trainer engine the train part is moving
to is expected to record the same keys; a run recording none of them is listed as skipped, never guessed at.

Shrinkage (normal-normal, empirical Bayes): a run's log residual r = ln(measured / predicted MFU) is the user's
offset d plus run noise of sd `run_sd`; d has prior N(0, `organisation_sd`^2), both sds estimated from how the
published runs scatter within and between organisations (`data/priors.json`). With n runs the posterior mean is
    d = sum(r) / (n + k),  k = run_sd^2 / organisation_sd^2   (the prior's strength, in runs),
so one run moves the estimate part of the way and many runs move it all the way. Each GPU type gets its own offset,
shrunk the same way towards the all-GPU offset. The result is written to `truecost-priors.json` beside
truecost.toml; the training estimate adds the offset to its log MFU (`Priors.offset`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from truecost.errors import UserError
from truecost.estimate.calibration import ALL_GPUS, Priors

if TYPE_CHECKING:
    from truecost.ledger import Ledger, RunRecord

USABLE_STATUSES = ("completed", "stopped")


@dataclass(frozen=True)
class MeasuredRun:
    """One of the user's runs as calibration sees it: where it ran and how far off the prior was."""

    run_id: str
    gpu: str
    gpus: int
    log_residual: float  # ln(measured MFU / predicted MFU)


@dataclass
class Calibration:
    """The offsets learned, the runs they rest on, and the runs that could not be used (with why)."""

    offsets: dict[str, float]
    runs: list[MeasuredRun]
    skipped: dict[str, str] = field(default_factory=dict)
    prior_strength_runs: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The `truecost-priors.json` document (and `--json`)."""
        return {"offsets": {k: round(v, 6) for k, v in self.offsets.items()},
                "mfu_factor": {k: round(math.exp(v), 4) for k, v in self.offsets.items()},
                "calibration": {"runs": len(self.runs), "prior_strength_runs": round(self.prior_strength_runs, 3),
                                "run_ids": [r.run_id for r in self.runs], "skipped": self.skipped,
                                "written": datetime.now(UTC).isoformat(timespec="seconds")},
                "measured_runs": [asdict(r) for r in self.runs]}


def prior_strength(priors: Priors) -> float:
    """k = run_sd^2 / organisation_sd^2: how many of the user's runs weigh as much as the published prior."""
    return (priors.run_sd / priors.organisation_sd) ** 2


def shrunk_offsets(runs: Sequence[MeasuredRun], strength: float) -> dict[str, float]:
    """All-GPU offset and one per GPU type, each the normal-normal posterior mean (see the module docstring)."""
    if not runs:
        return {}
    overall = sum(r.log_residual for r in runs) / (len(runs) + strength)
    offsets = {ALL_GPUS: overall}
    for gpu in sorted({r.gpu for r in runs}):
        mine = [r.log_residual - overall for r in runs if r.gpu == gpu]
        offsets[gpu] = overall + sum(mine) / (len(mine) + strength)
    return offsets


def _measured(run: RunRecord) -> tuple[MeasuredRun | None, str]:
    """The run's residual, or None and why it cannot be used."""
    from truecost.estimate.catalogue import find_gpu
    from truecost.estimate.tco_ledger import _utilisation

    if run.status not in USABLE_STATUSES:
        return None, f"status {run.status}"
    gpu_name = str((run.params.get("estimate") or {}).get("gpu") or "")
    if not gpu_name or gpu_name == "cpu":
        return None, "ran on the CPU (or recorded no params.estimate.gpu): says nothing of a GPU's utilisation"
    try:
        gpu = find_gpu(gpu_name).name
    except UserError:
        return None, f"GPU {gpu_name!r} is not in the catalogue"
    factor = _utilisation(run)
    if factor is None or factor <= 0:
        return None, ("no results.measured_vs_estimate.device_hours, planned tokens (params.config) or trained "
                      "tokens, or it resumed from a checkpoint")
    return MeasuredRun(run.id, gpu, int(run.params.get("world_size") or 1), math.log(factor)), ""


def calibrate_from_ledger(ledger: Ledger, priors: Priors) -> Calibration:
    """Read the ledger's measured train and tune runs and shrink their residuals into offsets."""
    runs, skipped = [], {}
    for kind in ("train", "tune"):
        for run in ledger.list_runs(kind=kind):
            measured, why = _measured(run)
            if measured is None:
                skipped[run.id] = why
            else:
                runs.append(measured)
    strength = prior_strength(priors)
    return Calibration(shrunk_offsets(runs, strength), runs, skipped, strength)


def write_user_priors(calibration: Calibration, path: str | Path) -> Path:
    """Write the calibration beside truecost.toml; the estimate reads it with `load_priors(path)`."""
    target = Path(path)
    try:
        target.write_text(json.dumps(calibration.to_dict(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror}") from exc
    return target
