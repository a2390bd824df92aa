"""The routers: baselines (random, zero, oracle) and learned ones (kNN, matrix factorisation, classifier, cascade).

Each predicts every model's expected quality for a prompt; the base class turns that into a choice with the knob.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from truecost.errors import UserError
from truecost.route.base import RouteDecision, Router, choose, prompt_seed, register_router
from truecost.route.embeddings import embedder_from_state, make_embedder
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
        truth = np.array([self.lookup_.get(p, self.mean_quality_) for p in prompts], dtype=float).reshape(
            len(prompts), len(self.models_))
        return np.where(np.isnan(truth), self.mean_quality_, truth)  # a missing outcome: the model's mean

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
        self.known_ = data.known.astype(np.float32)
        self.quality_ = np.nan_to_num(data.quality).astype(np.float32)  # missing: 0 here, and 0 in `known_`
        if self.k is not None:
            if self.k < 1:
                raise UserError(f"knn: k must be >= 1, got {self.k}")
            self.k_ = int(min(self.k, len(data)))
            return
        self.k_ = self._leave_one_out_k()

    def _leave_one_out_k(self) -> int:
        """The k of `K_CANDIDATES` with the least leave-one-out Brier score on the known training outcomes."""
        sims = self.features_ @ self.features_.T
        np.fill_diagonal(sims, -np.inf)
        order = np.argsort(-sims, axis=1)
        best_k, best_loss = 1, np.inf
        known = self.known_ > 0
        for k in self.K_CANDIDATES:
            if k >= len(self.features_):
                break
            pred = self._blend(order[:, :k])
            loss = float(np.mean((pred - self.quality_)[known] ** 2))
            if loss < best_loss:
                best_k, best_loss = k, loss
        return best_k

    def _blend(self, neighbours: np.ndarray) -> np.ndarray:
        """Mean known outcome of each row's neighbours, shrunk to the model mean by `prior_weight` pseudo-counts."""
        total = self.quality_[neighbours].sum(axis=1)
        count = self.known_[neighbours].sum(axis=1)
        return (total + self.prior_weight * self.mean_quality_) / (count + self.prior_weight)

    def _predict(self, prompts: list[str], features: np.ndarray | None) -> np.ndarray:
        assert features is not None
        sims = features @ self.features_.T
        k = min(self.k_, sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        return self._blend(top).astype(float)

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"k_": self.k_}, {"knn_features": self.features_, "knn_quality": self.quality_,
                                 "knn_known": self.known_}

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.k_ = int(meta["k_"])
        self.features_ = arrays["knn_features"]
        self.quality_ = arrays["knn_quality"]
        # Routers saved before missing outcomes were allowed knew every outcome.
        self.known_ = arrays.get("knn_known", np.ones_like(self.quality_))


def _weighted_logistic(features: np.ndarray, target: np.ndarray, c: float, seed: int) -> tuple[np.ndarray, float]:
    """Logistic regression on soft labels in [0, 1]: each row counts as a 1 with weight q and a 0 with 1 - q."""
    from sklearn.linear_model import LogisticRegression

    mean = float(target.mean())
    if mean <= 0.0 or mean >= 1.0:  # one class only: a constant is the honest prediction
        bias = float(np.log((mean + 1e-3) / (1 - mean + 1e-3)))
        return np.zeros(features.shape[1]), bias
    x = np.vstack([features, features])
    y = np.concatenate([np.ones(len(target)), np.zeros(len(target))])
    w = np.concatenate([target, 1.0 - target])
    keep = w > 0
    model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    model.fit(x[keep], y[keep], sample_weight=w[keep])
    return model.coef_[0].astype(float), float(model.intercept_[0])


def _per_model_logistic(features: np.ndarray, data: OutcomeDataset, c: float, seed: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """One logistic regression per model on its known outcomes: (coefficients [models, dims], intercepts)."""
    known = data.known
    fitted = [_weighted_logistic(features[known[:, j]], data.quality[known[:, j], j], c, seed)
              for j in range(len(data.models))]
    return np.stack([w for w, _ in fitted]), np.array([b for _, b in fitted])


@register_router
class ClassifierRouter(Router):
    """One small logistic-regression classifier per model: P(answer good | prompt embedding)."""

    name = "classifier"

    def __init__(self, c: float = 1.0, embedder: str = "auto", seed: int = 0) -> None:
        super().__init__(embedder=embedder, seed=seed)
        self.c = c

    def _fit(self, data: OutcomeDataset, features: np.ndarray | None) -> None:
        assert features is not None
        if self.c <= 0:
            raise UserError(f"{self.name}: c must be > 0, got {self.c}")
        self.coef_, self.intercept_ = _per_model_logistic(features, data, self.c, self.seed)

    def _predict(self, prompts: list[str], features: np.ndarray | None) -> np.ndarray:
        assert features is not None
        return _sigmoid(features @ self.coef_.T + self.intercept_)

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {"clf_coef": self.coef_, "clf_intercept": self.intercept_}

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.coef_, self.intercept_ = arrays["clf_coef"], arrays["clf_intercept"]


def close_calls(quality: np.ndarray, scaled_cost: np.ndarray, knob: float, band: float) -> np.ndarray:
    """Rows whose best model at `knob` beats the runner-up by less than `band` in utility (quality minus knob x
    cost / cost scale): the decisions a small error in the quality estimate could flip."""
    if quality.shape[1] < 2:
        return np.zeros(len(quality), bool)
    top_two = np.sort(quality - knob * scaled_cost, axis=1)[:, -2:]
    return np.asarray(top_two[:, 1] - top_two[:, 0] < band)


@register_router
class GatedRouter(ClassifierRouter):
    """Two classifiers: one on static MiniLM vectors (tens of microseconds a prompt) decides where it is sure; its
    close calls (`close_calls`, within `band` at the knob asked) are embedded with `embedder` (int8 MiniLM: ~10-20
    ms) and decided by the classifier fitted on those vectors.

    Static vectors route as well as MiniLM's on prompts like the training ones but worse on new subjects
    (docs/route.md); the close calls are where that costs decisions. `knob_for_strong_share` is calibrated on the
    accurate classifier, which decides every call near the threshold. Measured, not offered by `truecost route
    fit`: it won back part of the held-out-subject loss for a large share of the int8 cost (docs/route.md); the
    benches fit it (`bench/route_eval.py --gated-bands`, `bench/gateway_load.py --fit gated`).
    """

    name = "gated"

    def __init__(self, band: float = 0.05, c: float = 1.0, embedder: str = "auto",
                 fast_embedder: str = "minilm-static", seed: int = 0) -> None:
        super().__init__(c=c, embedder=embedder, seed=seed)
        self.band = band
        self.fast_embedder = fast_embedder

    def _fit_all(self, data: OutcomeDataset) -> Router:
        if not (self.band >= 0 and np.isfinite(self.band)):
            raise UserError(f"gated: band must be a finite number >= 0, got {self.band}")
        fast = make_embedder(self.fast_embedder)
        if fast.name == make_embedder(self.embedder).name:
            raise UserError(f"gated: the fast embedder and the accurate one are both {fast.name}; gating needs two")
        super()._fit_all(data)  # the accurate classifier, and the strong-share calibration on it
        self.fast_embedder_ = fast.fit(data.prompts)
        self.fast_coef_, self.fast_intercept_ = _per_model_logistic(
            self.fast_embedder_.transform(data.prompts), data, self.c, self.seed)
        return self

    def fast_quality(self, prompts: Sequence[str]) -> np.ndarray:
        """The fast classifier's expected quality, shape [n_prompts, n_models]."""
        self._check_fitted()
        return _sigmoid(self.fast_embedder_.transform(list(prompts)) @ self.fast_coef_.T + self.fast_intercept_)

    def gated(self, prompts: Sequence[str], knob: float) -> np.ndarray:
        """Which prompts the fast classifier hands on at `knob` (True: embedded again and decided accurately)."""
        return close_calls(self.fast_quality(prompts), self._scaled_cost(len(prompts)), knob, self.band)

    def _scaled_cost(self, n: int) -> np.ndarray:
        return np.broadcast_to(self.mean_cost_usd_ / self.cost_scale_usd_, (n, len(self.models_)))

    def _quality_at(self, prompts: list[str], knob: float) -> np.ndarray:
        quality = self.fast_quality(prompts)
        unsure = close_calls(quality, self._scaled_cost(len(prompts)), knob, self.band)
        if unsure.any():
            quality[unsure] = self.predict_quality([p for p, u in zip(prompts, unsure, strict=True) if u])
        return quality

    @property
    def embedder_name(self) -> str | None:
        self._check_fitted()
        return f"{self.fast_embedder_.name}+{self.embedder_.name}"

    def warm_up(self) -> Router:
        super().warm_up()
        self.fast_embedder_.transform(["warm-up"])
        return self

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._state()
        fast_meta, fast_arrays = self.fast_embedder_.state()
        arrays.update({f"fast_{k}": v for k, v in fast_arrays.items()})
        arrays.update(fast_clf_coef=self.fast_coef_, fast_clf_intercept=self.fast_intercept_)
        return {**meta, "fast_embedder_": fast_meta}, arrays

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._restore(meta, arrays)
        fast_arrays = {k.removeprefix("fast_"): v for k, v in arrays.items() if k.startswith("fast_")}
        self.fast_embedder_ = embedder_from_state(meta["fast_embedder_"], fast_arrays)
        self.fast_coef_, self.fast_intercept_ = arrays["fast_clf_coef"], arrays["fast_clf_intercept"]


@dataclass(frozen=True)
class _MFShapes:
    """Where each parameter of the matrix factorisation sits in the flat vector the optimiser sees."""

    d: int
    dims: int
    m: int

    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        d, k, m = self.d, self.dims, self.m
        w = theta[: d * k].reshape(d, k)
        b = theta[d * k: d * k + k]
        v = theta[d * k + k: d * k + k + m * k].reshape(m, k)
        return w, b, v, theta[d * k + k + m * k:]


def _mf_loss(theta: np.ndarray, x: np.ndarray, y: np.ndarray, known: np.ndarray, shapes: _MFShapes,
             weight_decay: float) -> tuple[float, np.ndarray]:
    """Binary cross-entropy on the known soft labels (per query) + L2 on W and V, and its gradient."""
    w, b, v, bias = shapes.unpack(theta)
    h = x @ w + b
    logits = h @ v.T + bias
    # log(1 + e^z) - y z, written stably; missing outcomes weigh nothing.
    loss_cells = np.logaddexp(0.0, logits) - y * logits
    n = len(x)
    loss = float((loss_cells * known).sum() / n + 0.5 * weight_decay * ((w * w).sum() + (v * v).sum()))
    g = (_sigmoid(logits) - y) * known / n
    dh = g @ v
    grad = np.concatenate([(x.T @ dh + weight_decay * w).ravel(), dh.sum(axis=0),
                           (g.T @ h + weight_decay * v).ravel(), g.sum(axis=0)])
    return loss, grad


@register_router
class MFRouter(Router):
    """Matrix factorisation in the style of RouteLLM: quality = sigmoid(v_model . (W x_prompt + b) + bias_model).

    The prompt embedding is projected to `dims` and scored against a learned vector per model; trained on soft
    labels (missing outcomes skipped) with L2 weight decay by scipy's L-BFGS, at most `steps` iterations.
    """

    name = "mf"

    def __init__(self, dims: int = 32, steps: int = 100, weight_decay: float = 1e-2, embedder: str = "auto",
                 seed: int = 0) -> None:
        super().__init__(embedder=embedder, seed=seed)
        self.dims = dims
        self.steps = steps
        self.weight_decay = weight_decay

    def _fit(self, data: OutcomeDataset, features: np.ndarray | None) -> None:
        from scipy.optimize import minimize

        assert features is not None
        rng = np.random.default_rng(self.seed)
        x, known = features.astype(float), data.known.astype(float)
        y = np.nan_to_num(data.quality)
        shapes = _MFShapes(x.shape[1], self.dims, y.shape[1])
        mean = np.clip(self.mean_quality_, 1e-3, 1 - 1e-3)
        start = np.concatenate([rng.normal(0, 1 / np.sqrt(shapes.d), shapes.d * shapes.dims), np.zeros(shapes.dims),
                                rng.normal(0, 0.1, shapes.m * shapes.dims), np.log(mean / (1 - mean))])
        fitted = minimize(_mf_loss, start, args=(x, y, known, shapes, self.weight_decay), jac=True,
                          method="L-BFGS-B", options={"maxiter": self.steps})
        self.w_, self.b_, self.v_, self.bias_ = shapes.unpack(fitted.x)

    def _predict(self, prompts: list[str], features: np.ndarray | None) -> np.ndarray:
        assert features is not None
        return _sigmoid((features @ self.w_ + self.b_) @ self.v_.T + self.bias_)

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {"mf_w": self.w_, "mf_b": self.b_, "mf_v": self.v_, "mf_bias": self.bias_}

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.w_, self.b_, self.v_, self.bias_ = arrays["mf_w"], arrays["mf_b"], arrays["mf_v"], arrays["mf_bias"]


@register_router
class CascadeRouter(KNNRouter):
    """Call the cheap model first; a checker reads its answer and decides whether to escalate (FrugalGPT/AutoMix).

    The checker is a logistic regression on (prompt, answer) embeddings, learned when the training outcomes carry
    the cheap model's `response`. Without responses there is no checker and the cascade routes like kNN on the
    prompt alone. With a checker, `route()` names the cheap model and `escalate(prompt, answer, knob)` says whether
    (and where) to go next; escalating pays for both calls.
    """

    name = "cascade"

    def __init__(self, cheap_model: str | None = None, c: float = 1.0, k: int | None = None,
                 prior_weight: float = 2.0, embedder: str = "auto", seed: int = 0) -> None:
        super().__init__(k=k, prior_weight=prior_weight, embedder=embedder, seed=seed)
        self.cheap_model = cheap_model
        self.c = c

    def _fit(self, data: OutcomeDataset, features: np.ndarray | None) -> None:
        super()._fit(data, features)
        cheap = self.cheap_model or data.models[int(np.argmin(data.cost_usd.mean(axis=0)))]
        if cheap not in data.models:
            raise UserError(f"cascade: cheap_model {cheap!r} is not in the data ({', '.join(data.models)})")
        self.cheap_model_ = cheap
        answers = data.responses.get(cheap)
        graded = data.known[:, data.models.index(cheap)]  # the checker learns from the cheap answers that were graded
        self.has_checker_ = (answers is not None and bool(graded.any())
                             and all(a is not None for a, g in zip(answers, graded, strict=True) if g))
        if self.has_checker_:
            assert features is not None and answers is not None
            rows = np.flatnonzero(graded)
            x = self._checker_features(features[rows], [answers[i] or "" for i in rows])
            self.checker_coef_, self.checker_intercept_ = _weighted_logistic(
                x, data.quality[rows, data.models.index(cheap)], self.c, self.seed)

    def _checker_features(self, prompt_features: np.ndarray, answers: list[str]) -> np.ndarray:
        answer_features = self.embedder_.transform(answers)
        length = np.log1p([len(a) for a in answers])[:, None]
        return np.hstack([prompt_features, answer_features, length, (length == 0).astype(float)])

    def check(self, prompts: list[str], answers: list[str]) -> np.ndarray:
        """The checker's probability that each cheap answer is good (needs a checker)."""
        features = self._checker_features(self.embedder_.transform(prompts), answers)
        return _sigmoid(features @ self.checker_coef_ + self.checker_intercept_)

    def route_many(self, prompts: Sequence[str], knob: float = 0.0) -> list[RouteDecision]:
        """With a checker: always the cheap model first (then call `escalate`); without one: like kNN."""
        decisions = super().route_many(prompts, knob)
        if not self.has_checker_:
            return decisions
        cheap = self.cheap_model_
        return [replace(d, model=cheap, score=d.expected_quality[cheap]
                        - knob * d.expected_cost_usd[cheap] / self.cost_scale_usd_) for d in decisions]

    def escalate(self, prompt: str, answer: str, knob: float = 0.0) -> RouteDecision | None:
        """After the cheap model answered: None to keep its answer, else the decision for the model to call next."""
        if not self.has_checker_:
            return None
        accept_quality = float(self.check([prompt], [answer])[0])
        decision = super().route_many([prompt], knob)[0]
        quality = np.array([decision.expected_quality[m] for m in self.models_])
        cost = np.array([decision.expected_cost_usd[m] for m in self.models_])
        others = np.array([m != self.cheap_model_ for m in self.models_])
        j = int(choose(np.where(others, quality, -np.inf), cost, knob, self.cost_scale_usd_))
        best_other = quality[j] - knob * cost[j] / self.cost_scale_usd_
        if accept_quality >= best_other:
            return None
        return replace(decision, model=self.models_[j], score=float(best_other))

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._state()
        meta.update(cheap_model_=self.cheap_model_, has_checker_=self.has_checker_)
        if self.has_checker_:
            arrays.update(checker_coef=self.checker_coef_, checker_intercept=np.array(self.checker_intercept_))
        return meta, arrays

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._restore(meta, arrays)
        self.cheap_model_, self.has_checker_ = meta["cheap_model_"], bool(meta["has_checker_"])
        if self.has_checker_:
            self.checker_coef_ = arrays["checker_coef"]
            self.checker_intercept_ = float(arrays["checker_intercept"])
