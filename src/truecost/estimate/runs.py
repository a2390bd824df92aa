"""Published training runs: the shared table the utilisation model is fitted on, and the package's held-out set.

Every run carries its organisation and publication date (`data/run_groups.csv` for the shared table, columns of
`data/heldout_runs.csv` for the held-out set), so validation can hold out whole organisations and calibration can
learn from an organisation's earlier runs only.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from truecost.errors import UserError, existing_file
from truecost.estimate.calibration import Priors, imputed_gpus
from truecost.estimate.catalogue import find_gpu, find_model
from truecost.estimate.training import TrainingSpec, model_flops, resolve, run_shape
from truecost.estimate.utilisation import RunShape

FIT_TIERS = ("A", "A-", "B")
JUDGED_TIERS = ("A", "A-")


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
    organisation: str = ""
    published: str = ""  # ISO date the run was published


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


@lru_cache(maxsize=1)
def run_groups() -> dict[str, tuple[str, str]]:
    """Model name -> (organisation, publication date) for the shared runs."""
    text = resources.files("truecost.estimate").joinpath("data", "run_groups.csv").read_text(encoding="utf-8")
    return {r["model"]: (r["organisation"], r["published"]) for r in csv.DictReader(text.splitlines())}


def _run_from_row(row: dict[str, str], tier: str) -> PublishedRun | None:
    tokens, hours = _number(row.get("tokens", "")), _number(row.get("gpu_hours", ""))
    if tokens is None or hours is None:
        return None
    try:
        gpu = find_gpu(row["gpu_type"]).name
    except UserError:
        return None
    total = float(row["params_total"])
    gpus = _number(row.get("num_gpus", ""))
    organisation, published = run_groups().get(row["model"], (row.get("organisation", ""), row.get("published", "")))
    return PublishedRun(model=row["model"], params_total=total,
                        params_active=_number(row.get("params_active", "")) or total, tokens=tokens,
                        seq_len=int(_number(row.get("seq_len", "")) or 2048), gpu=gpu,
                        num_gpus=int(gpus) if gpus else None, gpu_hours=hours, tier=tier,
                        run_type=row.get("run_type", "pretrain"), precision=_precision(row.get("precision", "")),
                        organisation=organisation or row["model"], published=published)


def read_runs(path: str | Path, tiers: tuple[str, ...] = FIT_TIERS, pretrain_only: bool = True
              ) -> list[PublishedRun]:
    """Runs from a published-runs CSV with numeric tokens, GPU-hours and a catalogued GPU."""
    path = existing_file(path, "published runs file")
    runs = []
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("reliability_tier") not in tiers:
                continue
            if pretrain_only and not row.get("run_type", "").startswith("pretrain"):
                continue
            run = _run_from_row(row, row["reliability_tier"])
            if run is not None:
                runs.append(run)
    return runs


def heldout_runs(scored_only: bool = True) -> list[PublishedRun]:
    """The package's held-out pre-training runs (`data/heldout_runs.csv`): never used to fit or choose the model.
    A row whose `scored` column is not `yes` says why its figure cannot judge an estimate; it is left out unless
    `scored_only` is False."""
    text = resources.files("truecost.estimate").joinpath("data", "heldout_runs.csv").read_text(encoding="utf-8")
    rows = [row for row in csv.DictReader(text.splitlines()) if row["scored"] == "yes" or not scored_only]
    runs = [_run_from_row({**row, "run_type": "pretrain"}, "held-out") for row in rows]
    return [run for run in runs if run is not None]


def run_spec(run: PublishedRun) -> TrainingSpec:
    """The TrainingSpec truecost would be given for this run (catalogue architecture when the name is known)."""
    try:
        model: str | None = find_model(run.model).name
    except UserError:
        model = None
    return TrainingSpec(model=model, params=None if model else run.params_total,
                        active_params=None if model else run.params_active, tokens=run.tokens, gpu=run.gpu,
                        gpus=run.num_gpus or 0, seq_len=run.seq_len, precision=run.precision,
                        method="full", recompute="selective")


@dataclass(frozen=True)
class RunObservation:
    """A published run as the fit sees it: its shape, the log steady MFU it achieved, and its weight."""

    run: PublishedRun
    shape: RunShape
    log_steady_mfu: float
    weight: float


def observe(run: PublishedRun, priors: Priors) -> RunObservation:
    """The steady-state MFU a run achieved, in 16-bit-equivalent terms, with failures and restarts taken out."""
    spec = run_spec(run)
    arch, gpu = resolve(spec)
    flops = model_flops(arch, spec)
    gpus = run.num_gpus or imputed_gpus(flops, gpu.peak16_tflops)
    mfu = flops / (run.gpu_hours * 3600.0 * gpu.peak16_tflops * 1e12)
    if run.precision == "fp8":
        mfu /= priors.fp8_speedup  # express FP8 runs in 16-bit-equivalent utilisation
    return RunObservation(run, run_shape(spec, arch, gpu), math.log(mfu / priors.goodput(gpus)),
                          0.5 if run.tier == "B" else 1.0)
