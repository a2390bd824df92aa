"""The catalogue: GPUs, dated GPU-hour prices, model configs and API prices, read from the package's data files.

Users add or override GPU rows in truecost.toml (`[[gpus]]` tables with the same column names).
"""

from __future__ import annotations

import csv
import json
import os
import re
import statistics
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from truecost.errors import UserError
from truecost.estimate.architecture import Architecture, architecture_from_hf_config

Precision = Literal["bf16", "fp16", "fp8", "tf32", "fp32"]
# Peak columns of gpus.csv: `fp32` is the CUDA-core (non-tensor) rate, `tf32` the TF32 tensor-core rate that fp32
# matmuls reach only when TF32 is switched on (PyTorch leaves it off by default since 1.12).
PEAK_PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "fp8")
Pricing = Literal["on-demand", "spot", "reserved"]
PRICINGS: tuple[str, ...] = ("on-demand", "spot", "reserved")


def _key(name: str) -> str:
    """Normalise a name for lookup: `A100-80GB`, `a100 80gb` and `A100_80GB` are the same GPU."""
    return re.sub(r"[^a-z0-9.]", "", name.lower())


@dataclass(frozen=True)
class GPU:
    """One accelerator's datasheet figures (dense peaks, no sparsity)."""

    name: str
    vendor: str
    generation: str
    memory_gib: float
    bandwidth_gb_s: float
    tdp_w: float
    peak_tflops: dict[str, float]  # precision -> dense TFLOP/s; a missing key means unsupported
    aliases: tuple[str, ...] = ()
    source: str = ""
    source_date: str = ""
    note: str = ""
    interconnect: str = "unknown"  # GPU-to-GPU link in a server: nvlink | pcie | infinity-fabric | none
    interconnect_gb_s: float = 0.0  # that link's bandwidth per GPU, both directions (as NVLink is quoted)
    scale_out_gb_s: float = 0.0  # network bandwidth per GPU to other servers, one direction
    interconnect_source: str = ""

    @property
    def peak16_tflops(self) -> float:
        """The dense 16-bit tensor peak utilisation is measured against (bf16, else fp16, else fp32)."""
        return self.peak_tflops.get("bf16") or self.peak_tflops.get("fp16") or self.peak_tflops["fp32"]

    @property
    def nvlink_class(self) -> bool:
        """A high-bandwidth GPU-to-GPU fabric (NVLink / Infinity Fabric), not PCIe."""
        return self.interconnect in ("nvlink", "infinity-fabric")

    def peak_flops(self, precision: str) -> float:
        """Dense peak FLOP/s at `precision`; UserError when the GPU cannot run it."""
        if precision not in self.peak_tflops:
            have = ", ".join(sorted(self.peak_tflops))
            raise UserError(f"{self.name} has no {precision} tensor support; choose one of: {have}")
        return self.peak_tflops[precision] * 1e12

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "vendor": self.vendor, "generation": self.generation,
                "memory_gib": self.memory_gib, "bandwidth_gb_s": self.bandwidth_gb_s, "tdp_w": self.tdp_w,
                "peak_tflops": dict(self.peak_tflops), "interconnect": self.interconnect,
                "interconnect_gb_s": self.interconnect_gb_s, "scale_out_gb_s": self.scale_out_gb_s,
                "interconnect_source": self.interconnect_source, "source": self.source,
                "source_date": self.source_date, "note": self.note}


def _data_text(name: str) -> str:
    return resources.files("truecost.estimate").joinpath("data", name).read_text(encoding="utf-8")


def _float(value: Any) -> float | None:
    if value is None or str(value).strip() == "":
        return None
    return float(value)


def _gpu_from_row(row: dict[str, Any]) -> GPU:
    peaks = {p: v for p in PEAK_PRECISIONS if (v := _float(row.get(f"peak_tflops_{p}"))) is not None}
    aliases = row.get("aliases") or ()
    if isinstance(aliases, str):
        aliases = tuple(a for a in aliases.split("|") if a)
    try:
        return GPU(name=str(row["name"]), vendor=str(row.get("vendor", "")), generation=str(row.get("generation", "")),
                   memory_gib=float(row["memory_gib"]), bandwidth_gb_s=float(row["bandwidth_gb_s"]),
                   tdp_w=float(row["tdp_w"]), peak_tflops=peaks, aliases=tuple(aliases),
                   source=str(row.get("source", "")), source_date=str(row.get("source_date", "")),
                   note=str(row.get("note", "")), interconnect=str(row.get("interconnect") or "unknown"),
                   interconnect_gb_s=_float(row.get("interconnect_gb_s")) or 0.0,
                   scale_out_gb_s=_float(row.get("scale_out_gb_s")) or 0.0,
                   interconnect_source=str(row.get("interconnect_source", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"GPU row {row.get('name', '?')!r}: missing or bad field ({exc}); needs name, memory_gib, "
                        "bandwidth_gb_s, tdp_w and peak_tflops_<precision> columns") from exc


@lru_cache(maxsize=1)
def _builtin_gpus() -> tuple[GPU, ...]:
    return tuple(_gpu_from_row(row) for row in csv.DictReader(_data_text("gpus.csv").splitlines()))


def _row_of(gpu: GPU) -> dict[str, Any]:
    row = {k: v for k, v in gpu.to_dict().items() if k != "peak_tflops"}
    row.update({f"peak_tflops_{p}": v for p, v in gpu.peak_tflops.items()}, aliases=gpu.aliases)
    return row


def _lookup(name: str, candidates: list[GPU]) -> GPU | None:
    wanted = _key(name)
    for gpu in candidates:
        if wanted == _key(gpu.name) or wanted in {_key(a) for a in gpu.aliases}:
            return gpu
    return None


def gpus(overrides: list[dict[str, Any]] | None = None) -> list[GPU]:
    """All catalogue GPUs, with `overrides` (truecost.toml `[[gpus]]` rows) replacing fields or adding rows."""
    table = {g.name: g for g in _builtin_gpus()}
    for row in overrides or []:
        base = _lookup(str(row.get("name", "")), list(table.values()))
        gpu = _gpu_from_row(row if base is None else {**_row_of(base), **row, "name": base.name})
        table[gpu.name] = gpu
    return list(table.values())


def find_gpu(name: str, overrides: list[dict[str, Any]] | None = None) -> GPU:
    """The GPU called `name` (or one of its aliases); UserError listing the valid names otherwise."""
    candidates = gpus(overrides)
    gpu = _lookup(name, candidates)
    if gpu is None:
        valid = ", ".join(g.name for g in candidates)
        raise UserError(f"unknown GPU {name!r}; choose one of: {valid} (or add a [[gpus]] row in truecost.toml)")
    return gpu


@dataclass(frozen=True)
class PriceRow:
    """One dated price observation for one GPU-hour."""

    gpu: str
    pricing: str
    usd_per_gpu_hour: float
    provider: str
    market: str  # hyperscaler | neocloud | marketplace | assumption
    offer: str
    current: bool
    source: str
    source_date: str
    note: str = ""


@lru_cache(maxsize=1)
def price_rows() -> tuple[PriceRow, ...]:
    """Every dated GPU-hour price in the catalogue."""
    rows = []
    for r in csv.DictReader(_data_text("gpu_prices.csv").splitlines()):
        rows.append(PriceRow(gpu=r["gpu"], pricing=r["pricing"], usd_per_gpu_hour=float(r["usd_per_gpu_hour"]),
                             provider=r["provider"], market=r["market"], offer=r["offer"],
                             current=r["current"] == "yes", source=r["source"], source_date=r["source_date"],
                             note=r.get("note") or ""))
    return tuple(rows)


# Which market a default price comes from, in order: GPU-hour prices differ ~2x between markets for the same card,
# so a default compares like with like by taking one market's rows, never a median across markets.
MARKET_PREFERENCE = ("neocloud", "hyperscaler", "marketplace", "assumption")


@dataclass(frozen=True)
class PriceBasis:
    """A default GPU-hour price and the rows it is the median of (one market)."""

    usd_per_gpu_hour: float
    market: str
    rows: tuple[PriceRow, ...]

    def describe(self) -> str:
        """`$2.84 median of 4 neocloud rows (Lambda, CoreWeave, ...; 2025-2026-03)`."""
        providers = ", ".join(sorted({r.provider for r in self.rows}))
        dates = sorted({r.source_date for r in self.rows})
        span = dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]}"
        return f"${self.usd_per_gpu_hour:.2f} median of {len(self.rows)} {self.market} row(s) ({providers}; {span})"


def price_basis(gpu: GPU, pricing: str = "on-demand") -> PriceBasis:
    """The catalogue's default price for this GPU and pricing type: the median of the current rows of the first
    market in MARKET_PREFERENCE that prices it (the median resists outliers)."""
    if pricing not in PRICINGS:
        raise UserError(f"unknown pricing {pricing!r}; choose one of: {', '.join(PRICINGS)}")
    current = [r for r in price_rows() if r.gpu == gpu.name and r.pricing == pricing and r.current]
    for market in MARKET_PREFERENCE:
        rows = tuple(r for r in current if r.market == market)
        if rows:
            return PriceBasis(float(statistics.median(r.usd_per_gpu_hour for r in rows)), market, rows)
    have = sorted({r.pricing for r in price_rows() if r.gpu == gpu.name and r.current})
    hint = f" (catalogued for it: {', '.join(have)})" if have else ""
    raise UserError(f"no catalogued {pricing} price for {gpu.name}{hint}; pass --price-per-gpu-hour")


def gpu_price_label(gpu: GPU, pricing: str, given: float | None) -> dict[str, str]:
    """Where a $/GPU-hour came from: the dated catalogue (sourced) or the user's own figure (assumed)."""
    if given is not None:
        return {"basis": "assumed", "source": f"${given:.2f}/GPU-hour given by you (--price-per-gpu-hour or "
                "truecost.toml [hardware] price_per_gpu_hour)"}
    return {"basis": "sourced", "source": price_basis(gpu, pricing).describe()}


def default_price_usd(gpu: GPU, pricing: str = "on-demand") -> float:
    """The default $/GPU-hour (see `price_basis`)."""
    return price_basis(gpu, pricing).usd_per_gpu_hour


@dataclass(frozen=True)
class CatalogueModel:
    """A model config shipped as data, with the parameter count its authors published."""

    name: str
    config: dict[str, Any]
    published_params: float
    published_active_params: float | None
    source: str
    source_date: str

    @property
    def architecture(self) -> Architecture:
        return architecture_from_hf_config(self.config, self.name)


@lru_cache(maxsize=1)
def models() -> dict[str, CatalogueModel]:
    """The shipped model configs by name (`llama-2-7b`, `deepseek-v3`, ...)."""
    out = {}
    folder = resources.files("truecost.estimate").joinpath("data", "models")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        data = json.loads(entry.read_text(encoding="utf-8"))
        out[data["name"]] = CatalogueModel(
            name=data["name"], config=data["config"], published_params=float(data["published_params"]),
            published_active_params=_float(data.get("published_active_params")), source=data["source"],
            source_date=data["source_date"])
    return out


def hf_cache_dir() -> Path:
    """The local Hugging Face hub cache: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def cached_hf_model(model_id: str) -> CatalogueModel | None:
    """A Hugging Face model id (`org/name`) whose config.json sits in the local hub cache (newest snapshot), or
    None. Nothing is downloaded."""
    if model_id.count("/") != 1:
        return None
    folder = hf_cache_dir() / ("models--" + model_id.replace("/", "--")) / "snapshots"
    configs = sorted(folder.glob("*/config.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    if not configs:
        return None
    try:
        config = json.loads(configs[-1].read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{configs[-1]}: not a readable config.json ({exc})") from exc
    arch = architecture_from_hf_config(config, model_id)
    return CatalogueModel(name=model_id, config=config, published_params=float(arch.params_total),
                          published_active_params=float(arch.params_active), source=f"local HF cache {configs[-1]}",
                          source_date="")


def find_model(name: str) -> CatalogueModel:
    """The catalogue model called `name` (case and punctuation insensitive), else a Hugging Face id found in the
    local hub cache; UserError listing the choices."""
    wanted = _key(name.split("/")[-1].removesuffix("-hf"))
    for model in models().values():
        if _key(model.name) == wanted:
            return model
    cached = cached_hf_model(name)
    if cached is not None:
        return cached
    hint = f"; no config.json for it in the HF cache {hf_cache_dir()}" if "/" in name else ""
    raise UserError(f"unknown model {name!r}; choose one of: {', '.join(models())} "
                    f"(or pass --config PATH to a config.json, or --params N){hint}")


@dataclass(frozen=True)
class ApiPrice:
    """Per-token list price of a hosted model API."""

    model: str
    usd_per_1m_input: float
    usd_per_1m_output: float
    provider: str
    source: str
    source_date: str


@lru_cache(maxsize=1)
def api_prices() -> dict[str, ApiPrice]:
    """Hosted-model API prices by lower-case model name."""
    out = {}
    for r in csv.DictReader(_data_text("api_prices.csv").splitlines()):
        out[r["model"].lower()] = ApiPrice(model=r["model"], usd_per_1m_input=float(r["usd_per_1m_input"]),
                                           usd_per_1m_output=float(r["usd_per_1m_output"]), provider=r["provider"],
                                           source=r["source"], source_date=r["source_date"])
    return out


def with_memory(gpu: GPU, memory_gib: float | None) -> GPU:
    """The same GPU with its memory replaced (e.g. host RAM for CPU training)."""
    return gpu if memory_gib is None else replace(gpu, memory_gib=float(memory_gib))
