"""The routers: baselines (random, zero, oracle) and learned ones (kNN, matrix factorisation, classifier, cascade).

Each predicts every model's expected quality for a prompt; the base class turns that into a choice with the knob.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from truecost.errors import UserError
from truecost.route.base import Router, prompt_seed, register_router
from truecost.route.outcomes import OutcomeDataset

LEARNED_ROUTERS = ("knn", "mf", "classifier", "cascade")
BASELINE_ROUTERS = ("random", "zero", "oracle")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


@register_router
class RandomRouter(Router):
    """Baseline: a random quality guess per prompt and model (stable per prompt), so choices ignore the prompt."""

    name = "random"
    uses_embeddings = False

    def _fit(self, data: OutcomeDataset, features: np.ndarray | None) -> None:
        return None

    def _predict(self, prompts: list[str], features: np.ndarray | None) -> np.ndarray:
        return np.array([np.random.default_rng(prompt_seed(p, self.seed)).random(len(self.models_))
                         for p in prompts]).reshape(len(prompts), len(self.models_))


@register_router
class ZeroRouter(Router):
    """RouterBench's zero router: every prompt gets each model's mean quality, so it mixes models blindly.

    Its lambda sweep visits exactly the vertices of the single models' cost/quality convex hull.
    """

    name = "zero"
    uses_embeddings = False

    def _fit(self, data: OutcomeDataset, features: np.ndarray | None) -> None:
        return None

    def _predict(self, prompts: list[str], features: np.ndarray | None) -> np.ndarray:
        return np.broadcast_to(self.mean_quality_, (len(prompts), len(self.models_))).copy()


@register_router
class OracleRouter(Router):
    """Reference only: knows the true outcome of every prompt it was fitted on (the ceiling, not a product)."""

    name = "oracle"
    uses_embeddings = False

    def _fit(self, data: OutcomeDataset, features: np.ndarray | None) -> None:
        self.lookup_ = {p: data.quality[i] for i, p in enumerate(data.prompts)}

    def _predict(self, prompts: list[str], features: np.ndarray | None) -> np.ndarray:
        return np.array([self.lookup_.get(p, self.mean_quality_) for p in prompts]).reshape(
            len(prompts), len(self.models_))

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        prompts = list(self.lookup_)
        return {"prompts": prompts}, {"oracle_quality": np.array([self.lookup_[p] for p in prompts])}

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.lookup_ = {p: arrays["oracle_quality"][i] for i, p in enumerate(meta["prompts"])}


@register_router
class KNNRouter(Router):
    """Mean outcome of the k most similar training prompts (cosine on embeddings), shrunk towards the model mean.

    `k=None` picks k by leave-one-out Brier score on the training data.
    """

    name = "knn"
    K_CANDIDATES = (5, 10, 20, 40, 80, 160)

    def __init__(self, k: int | None = None, prior_weight: float = 2.0, embedder: str = "auto",
                 seed: int = 0) -> None:
        super().__init__(embedder=embedder, seed=seed)
        self.k = k
        self.prior_weight = prior_weight

    def _fit(self, data: OutcomeDataset, features: np.ndarray | None) -> None:
        assert features is not None
        self.features_ = features.astype(np.float32)
        self.quality_ = data.quality.astype(np.float32)
        if self.k is not None:
            if self.k < 1:
                raise UserError(f"knn: k must be >= 1, got {self.k}")
            self.k_ = int(min(self.k, len(data)))
            return
        sims = self.features_ @ self.features_.T
        np.fill_diagonal(sims, -np.inf)
        order = np.argsort(-sims, axis=1)
        best_k, best_loss = 1, np.inf
        for k in self.K_CANDIDATES:
            if k >= len(data):
                break
            pred = self._blend(self.quality_[order[:, :k]].sum(axis=1), k)
            loss = float(np.mean((pred - self.quality_) ** 2))
            if loss < best_loss:
                best_k, best_loss = k, loss
        self.k_ = best_k

    def _blend(self, neighbour_sum: np.ndarray, k: int) -> np.ndarray:
        return (neighbour_sum + self.prior_weight * self.mean_quality_) / (k + self.prior_weight)

    def _predict(self, prompts: list[str], features: np.ndarray | None) -> np.ndarray:
        assert features is not None
        sims = features @ self.features_.T
        k = min(self.k_, sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        return self._blend(self.quality_[top].sum(axis=1), k).astype(float)

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"k_": self.k_}, {"knn_features": self.features_, "knn_quality": self.quality_}

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.k_ = int(meta["k_"])
        self.features_ = arrays["knn_features"]
        self.quality_ = arrays["knn_quality"]
