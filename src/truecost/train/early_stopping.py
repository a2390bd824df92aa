"""Early stopping as a plain counter: the starting loss is the first mark to beat."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class EarlyStopping:
    """Counts evaluations without an improvement of at least `min_delta`; `stop` once `patience` is reached."""

    patience: int | None
    min_delta: float
    best: float = math.inf
    bad_evals: int = 0

    def update(self, loss: float) -> bool:
        """Record one evaluation; True when the run should stop."""
        if loss < self.best - self.min_delta:
            self.best = loss
            self.bad_evals = 0
        else:
            self.best = min(self.best, loss)
            self.bad_evals += 1
        return self.patience is not None and self.bad_evals >= self.patience
