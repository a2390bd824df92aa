"""Levers: changes to a training plan, each re-estimated with the same model and ranked by dollars saved.

Each lever carries its basis: `sourced` when the saving is the calibrated estimate re-run on the dated catalogue,
`assumed` when it rests on a named default (the spot rework share, the duplicate share). None is measured: a
saving becomes measured only when a run records it (curate's removed tokens, a route eval), and only those are
ever summed (see `truecost.report.ledger_report`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from truecost.errors import UserError
from truecost.estimate.calibration import Priors
from truecost.estimate.catalogue import default_price_usd, find_gpu, gpus

if TYPE_CHECKING:
    from truecost.estimate.training import Lever, TrainingEstimate, TrainingSpec

# Work redone after spot preemptions (checkpoint every ~30 min, a few preemptions a day).
SPOT_REWORK = 0.05


def _gpu_type_lever(spec: TrainingSpec, est: TrainingEstimate) -> tuple[str, tuple[float, bool], str] | None:
    """The cheapest other GPU type whose memory holds the job and whose interconnect keeps up with its parallelism
    at this scale (a job with tensor parallelism needs an NVLink-class link; no GPU whose data-parallel traffic
    would exceed its compute), with the wall time both ways."""
    from truecost.estimate.training import estimate_training

    if spec.price_per_gpu_hour is not None:
        return None
    best = None
    for gpu in gpus(spec.gpu_overrides):
        if gpu.name == est.gpu or gpu.vendor == "cpu" or (spec.tp > 1 and not gpu.nvlink_class):
            continue
        try:
            other = estimate_training(spec.model_copy(update={"gpu": gpu.name}), with_levers=False)
        except UserError:
            continue
        bound = other.communication is not None and other.communication.bound == "interconnect"
        if other.fits_in_memory and not bound and (best is None or other.cost_usd["p50"] < best.cost_usd["p50"]):
            best = other
    if best is None:
        return None
    return (f"use {best.gpu} instead", (best.cost_usd["p50"], True),
            f"cheapest catalogued GPU type that holds this job and whose {best.interconnect} link keeps up with its "
            f"data-parallel traffic on {best.gpus} GPUs; wall time {best.wall_hours['p50']:,.0f} h vs "
            f"{est.wall_hours['p50']:,.0f} h on {est.gpu} ({spec.pricing} prices)")


def _p50(spec: TrainingSpec, **changes: object) -> tuple[float, bool] | None:
    from truecost.estimate.training import estimate_training

    try:
        est = estimate_training(spec.model_copy(update=changes), with_levers=False)
    except UserError:
        return None
    return est.cost_usd["p50"], est.fits_in_memory


def training_levers(spec: TrainingSpec, est: TrainingEstimate, priors: Priors) -> list[Lever]:
    """Every applicable lever with its p50 saving, largest first; ones that would not fit in memory are dropped."""
    from truecost.estimate.sizing import same_loss_saving
    from truecost.estimate.training import Lever

    base = est.cost_usd["p50"]
    out: list[Lever] = []

    def add(name: str, result: tuple[float, bool] | None, note: str, basis: str = "sourced") -> None:
        if result is not None and result[1] and base - result[0] > 0:
            out.append(Lever(name, base - result[0], note, basis))

    if spec.price_per_gpu_hour is None and spec.pricing != "spot":
        gpu = find_gpu(spec.gpu, spec.gpu_overrides)
        try:
            spot = default_price_usd(gpu, "spot")
        except UserError:
            spot = None
        if spot is not None:
            cost = est.gpu_hours["p50"] * (1 + SPOT_REWORK) * spot
            add("spot instances", (cost, True),
                f"${spot:.2f}/GPU-h spot vs ${est.usd_per_gpu_hour:.2f}; {SPOT_REWORK:.0%} rework for preemptions "
                "(assumed); needs frequent checkpoints", "assumed")
    if spec.precision in ("bf16", "fp16") and spec.method == "full":
        add("fp8 training", _p50(spec, precision="fp8"),
            f"~{priors.fp8_speedup:.1f}x end-to-end on GPUs with FP8 tensor cores (Transformer Engine)")
    fine_tune = spec.tokens < est.params_active  # fewer tokens than weights: adapting a model, not pre-training
    if spec.method == "full" and fine_tune:
        add("LoRA instead of full fine-tuning", _p50(spec, method="lora"),
            "fine-tuning only: frozen base skips weight gradients; quality close to full FT on most tasks")
        add("QLoRA (4-bit base)", _p50(spec, method="qlora", gpus=max(1, spec.gpus // 4) if spec.gpus else 0),
            "fine-tuning only: 4-bit frozen base fits on a quarter of the GPUs; ~1.3x slower per token")
    if spec.recompute == "full":
        add("selective instead of full recompute", _p50(spec, recompute="selective"),
            "stops repeating the forward pass; needs the activation memory to fit")
    gpu_lever = _gpu_type_lever(spec, est)
    if gpu_lever is not None:
        add(*gpu_lever)
    add("de-duplicate the training data", (base * (1 - spec.duplicate_share), True),
        f"assumes {spec.duplicate_share:.0%} of tokens are duplicates ([estimate] duplicate_share; measure yours "
        "with `truecost curate`)", "assumed")
    if spec.method == "full" and not fine_tune:
        n, d, share = same_loss_saving(float(est.params_active), float(spec.tokens))
        if share > 0.01:
            direction = "smaller model, more tokens" if n < est.params_active else "larger model, fewer tokens"
            caveat = "" if n < est.params_active else "; a larger model costs more to serve"
            add(f"{direction} (same loss)", (base * (1 - share), True),
                f"Chinchilla: {n / 1e9:.3g}B params on {d / 1e9:.3g}B tokens reach the same loss with "
                f"{share:.0%} less compute{caveat}")
    return sorted(out, key=lambda lever: lever.saving_usd, reverse=True)

