"""Right-sizing with the Chinchilla parametric loss: compute-optimal model size and tokens, and same-loss trades."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class ScalingLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta (N parameters, D training tokens)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""

    def loss(self, params: float, tokens: float) -> float:
        return self.E + self.A / params**self.alpha + self.B / tokens**self.beta

    def compute_optimal(self, flops: float) -> tuple[float, float]:
        """(params, tokens) minimising the loss at `flops` = 6 N D (closed form from dL/dN = 0)."""
        a, b = self.alpha, self.beta
        g = (a * self.A / (b * self.B)) ** (1.0 / (a + b))
        params = g * (flops / 6.0) ** (b / (a + b))
        return params, flops / (6.0 * params)

    def tokens_for_loss(self, params: float, loss: float) -> float | None:
        """Tokens a model of `params` needs to reach `loss`; None when it never can."""
        gap = loss - self.E - self.A / params**self.alpha
        if gap <= 0:
            return None
        return (self.B / gap) ** (1.0 / self.beta)

    def cheapest_same_loss(self, params: float, tokens: float) -> tuple[float, float]:
        """(params, tokens) that reach the loss of (params, tokens) with the fewest 6ND FLOPs (log-grid search)."""
        target = self.loss(params, tokens)
        best = (params, tokens)
        for i in range(-400, 401):
            n = params * 10 ** (i / 200.0)
            d = self.tokens_for_loss(n, target)
            if d is not None and n * d < best[0] * best[1]:
                best = (n, d)
        return best


@lru_cache(maxsize=1)
def chinchilla() -> ScalingLaw:
    """The shipped scaling-law fit (see `data/scaling_laws.json` for its source)."""
    data = json.loads(resources.files("truecost.estimate").joinpath("data", "scaling_laws.json")
                      .read_text(encoding="utf-8"))
    return ScalingLaw(E=data["E"], A=data["A"], B=data["B"], alpha=data["alpha"], beta=data["beta"],
                      source=data["source"])


def same_loss_saving(params: float, tokens: float) -> tuple[float, float, float]:
    """(params, tokens, share of compute saved) of the cheapest model reaching the plan's loss."""
    if not math.isfinite(params * tokens) or params <= 0 or tokens <= 0:
        return params, tokens, 0.0
    law = chinchilla()
    n, d = law.cheapest_same_loss(params, tokens)
    return n, d, max(0.0, 1.0 - (n * d) / (params * tokens))
