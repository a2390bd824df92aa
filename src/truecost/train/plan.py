"""`truecost train --plan`: the estimate for a config as written, and the cheapest variant of it that fits.

No training happens; every figure comes from the estimate module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from truecost.train.config import TrainConfig
from truecost.train.preflight import base_variant, estimate_variant, plan_variants, preflight, target_for


@dataclass
class PlanRow:
    """One configuration and its estimate."""

    label: str
    changes: str
    fits: bool
    memory_gib: float
    wall_hours: float
    gpu_hours: float
    cost_usd: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(self.__dict__)


@dataclass
class Plan:
    """The configured run, the run the pre-flight would actually start, and the cheapest that fits."""

    device: str
    gpu: str
    device_memory_gib: float
    as_configured: PlanRow
    would_run: PlanRow | None
    cheapest: PlanRow | None
    alternatives: list[PlanRow]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"device": self.device, "gpu": self.gpu, "device_memory_gib": self.device_memory_gib,
                "as_configured": self.as_configured.to_dict(),
                "would_run": self.would_run.to_dict() if self.would_run else None,
                "cheapest": self.cheapest.to_dict() if self.cheapest else None,
                "alternatives": [row.to_dict() for row in self.alternatives]}


def _row(label: str, changes: str, estimate: Any) -> PlanRow:
    memory = estimate.memory_per_gpu_gib
    return PlanRow(label=label, changes=changes, fits=bool(estimate.fits_in_memory),
                   memory_gib=float(memory["total"] if isinstance(memory, dict) else memory.total),
                   wall_hours=float(estimate.wall_hours["p50"]), gpu_hours=float(estimate.gpu_hours["p50"]),
                   cost_usd=float(estimate.cost_usd["p50"]))


def plan(config: TrainConfig, *, project: Any, device: str | None = None, world_size: int = 1,
         top: int = 5) -> Plan:
    """Estimate `config` as written and list the cheapest variants that fit (same tokens per step)."""
    from truecost.train.model import pick_device

    device = device or pick_device(config.hardware.device)
    target = target_for(config, project=project, device=device, world_size=world_size)
    base = base_variant(config, recompute=config.gradient_checkpointing == "on", world_size=world_size,
                        device=device)
    as_configured = _row("as configured", "as configured", estimate_variant(config, base, target))
    check = preflight(config, project=project, device=device, world_size=world_size)
    would_run = None
    if check.fits:
        variant = base_variant(config, recompute=check.recompute, world_size=world_size, device=device)
        would_run = _row("pre-flight would run", variant.describe(base), check.estimate)
    fitting = plan_variants(config, target, device, base)
    rows = [_row("cheapest that fits" if i == 0 else "fits", variant.describe(base), estimate)
            for i, (variant, estimate) in enumerate(fitting[:top])]
    return Plan(device=device, gpu=target.gpu, device_memory_gib=float(check.device_memory_gib),
                as_configured=as_configured, would_run=would_run, cheapest=rows[0] if rows else None,
                alternatives=rows)
