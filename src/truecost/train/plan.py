"""`truecost train --plan`: the estimate for a config as written, and the cheapest variant of it that fits.

No training happens; every figure comes from the estimate module.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from truecost.train.config import TrainConfig
from truecost.train.preflight import Preflight, estimate_shape, plan_shapes, preflight, shape_of_config, target_for

if TYPE_CHECKING:
    from truecost.config import Config


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


def _row(label: str, changes: str, check: Preflight) -> PlanRow:
    return PlanRow(label=label, changes=changes, fits=check.fits, memory_gib=check.memory_gib,
                   wall_hours=check.wall_hours, gpu_hours=check.gpu_hours, cost_usd=check.cost_usd)


def plan(config: TrainConfig, *, project: Config, device: str | None = None, world_size: int = 1,
         top: int = 5) -> Plan:
    """Estimate `config` as written and list the cheapest variants that fit (same tokens per step)."""
    from truecost.train.model import pick_device

    device = device or pick_device(config.hardware.device)
    base = shape_of_config(config, device=device, world_size=world_size)
    target = target_for(base, project)
    as_configured = estimate_shape(base, target)
    check = preflight(base, project, config.gradient_checkpointing)
    would_run = None
    if check.fits:
        would_run = _row("pre-flight would run", replace(base, recompute=check.recompute).describe(base), check)
    fitting = plan_shapes(base, project)
    rows = [_row("cheapest that fits" if i == 0 else "fits", shape.describe(base), estimate)
            for i, (shape, estimate) in enumerate(fitting[:top])]
    return Plan(device=device, gpu=target.gpu, device_memory_gib=float(check.device_memory_gib),
                as_configured=_row("as configured", "as configured", as_configured), would_run=would_run,
                cheapest=rows[0] if rows else None, alternatives=rows)
