"""`truecost.toml`: the project file. Optional; every field has a default and a reason.

Each part keeps its own section model next to its code (`truecost/<part>/settings.py`); this module joins them,
reads the file and turns validation errors into one clear line that names the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from truecost.errors import UserError, existing_file
from truecost.estimate.pricing import ComputePrices
from truecost.units import parse_quantity

CONFIG_FILENAME = "truecost.toml"


def _quantity(value: Any) -> Any:
    return parse_quantity(value) if isinstance(value, str) else value


Quantity = Annotated[float, BeforeValidator(_quantity)]
"""A positive number that may be written `7B`, `2T` or `1e12` in the file."""


class Section(BaseModel):
    """Base for every section: unknown keys are errors, so a typo never goes unnoticed; TOML's inf and nan are
    refused, since either would turn a dollar figure into null."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)


class HardwareSettings(Section):
    """Where the work runs and what compute costs; used to price every metered run."""

    gpu: str = "H100 SXM"
    gpus: int = Field(8, ge=1)
    pricing: Literal["on-demand", "spot", "reserved"] = "on-demand"
    price_per_gpu_hour: float | None = Field(None, gt=0)
    # The defaults and their sources are defined once, in `truecost.estimate.pricing.ComputePrices`.
    cpu_usd_per_core_hour: float = Field(ComputePrices.cpu_usd_per_core_hour, ge=0)
    cpu_watts_per_core: float = Field(ComputePrices.cpu_watts_per_core, ge=0)
    pue: float = Field(ComputePrices.pue, ge=1.0)
    grid_kg_co2_per_kwh: float = Field(ComputePrices.grid_kg_co2_per_kwh, ge=0)


class TargetSettings(Section):
    """The model a team really builds; measured ratios are extrapolated to it.

    Default: a 7B model fine-tuned on 2B tokens, retrained quarterly and served for a year on rented GPUs.
    """

    model: str = "llama-2-7b"
    params: Quantity | None = None
    method: Literal["full", "lora", "qlora"] = "full"
    precision: Literal["bf16", "fp16", "fp8", "fp32"] = "bf16"
    training_tokens: Quantity = 2e9
    seq_len: int = Field(4096, ge=1)
    retrains_per_year: float = Field(4, ge=0)
    requests_per_day: Quantity = 100_000
    prompt_tokens: int = Field(500, ge=0)
    output_tokens: int = Field(200, ge=0)
    horizon_months: int = Field(12, ge=1)


class LedgerSettings(Section):
    """Where measured costs are stored."""

    url: str | None = None


class Config(Section):
    """The whole project file."""

    hardware: HardwareSettings = Field(default_factory=HardwareSettings)
    target: TargetSettings = Field(default_factory=TargetSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    # Sections owned by the parts; each validates its own keys where it is used.
    estimate: dict[str, Any] = Field(default_factory=dict)
    curate: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)
    route: dict[str, Any] = Field(default_factory=dict)
    review: dict[str, Any] = Field(default_factory=dict)
    monitor: dict[str, Any] = Field(default_factory=dict)
    gpus: list[dict[str, Any]] = Field(default_factory=list)

    def compute_prices(self) -> ComputePrices:
        """The unit prices used to price metered CPU/GPU time (see `truecost.estimate.pricing`)."""
        hw = self.hardware
        return ComputePrices(cpu_usd_per_core_hour=hw.cpu_usd_per_core_hour, cpu_watts_per_core=hw.cpu_watts_per_core,
                             gpu_usd_per_hour=hw.price_per_gpu_hour or 0.0, pue=hw.pue,
                             grid_kg_co2_per_kwh=hw.grid_kg_co2_per_kwh)


def describe_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: `source: field.path: message (got value)`."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        got = f" (got {err['input']!r})" if err["type"] != "missing" and "input" in err else ""
        lines.append(f"{source}: {where}: {err['msg']}{got}")
    return "; ".join(lines)


def load_config(path: str | Path | None = None) -> Config:
    """Read `path`, or `./truecost.toml` when it exists, or return the defaults."""
    if path is None:
        candidate = Path(CONFIG_FILENAME)
        if not candidate.exists():
            return Config()
        path = candidate
    path = existing_file(path, "config file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from exc
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, str(path))) from exc
