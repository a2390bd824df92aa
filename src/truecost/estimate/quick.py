"""`truecost estimate` with no sub-command: the p50 training estimate of the truecost.toml target plan."""

from __future__ import annotations

from typing import Any

from truecost.config import Config


def quick_training_estimate(cfg: Config) -> dict[str, Any]:
    """The full training estimate of the configured target, as the `--json` dictionary."""
    from truecost.estimate.costing import target_spec
    from truecost.estimate.training import estimate_training

    return estimate_training(target_spec(cfg)).to_dict()
