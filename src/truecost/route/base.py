"""The one contract every router follows, and its safe on-disk format (JSON + .npz, never pickle).

A router predicts, for each prompt, the expected quality of every model; the choice is
argmax_m(expected_quality[m] - knob * cost[m] / cost_scale_usd_), where `cost_scale_usd_` is the dearest model's
mean cost per query on the training data. So knob (lambda) = 1 means "paying the dearest model's average price is
worth one full quality point"; knob = 0 is best quality regardless of cost; a large knob is the cheapest model.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from truecost.errors import UserError
from truecost.route.embeddings import Embedder, embedder_from_state, make_embedder
from truecost.route.outcomes import OutcomeDataset

FORMAT_VERSION = 1
ROUTER_FILE = "router.json"
ARRAYS_FILE = "arrays.npz"


@dataclass(frozen=True)
class RouteDecision:
    """Which model to call for one prompt, and why."""

    model: str
    score: float  # expected quality minus knob x normalised cost, for the chosen model
    expected_quality: dict[str, float]
    expected_cost_usd: dict[str, float] = field(default_factory=dict)
    knob: float = 0.0


def choose(quality: np.ndarray, cost_usd: np.ndarray, knob: float, cost_scale_usd: float) -> np.ndarray:
    """Index of argmax(quality - knob * cost / scale) per row; ties go to the cheaper model."""
    utility = quality - knob * (cost_usd / cost_scale_usd)
    # Tie-break towards the cheaper model: subtract a cost-ordered epsilon far below any real utility gap.
    utility = utility - 1e-12 * (cost_usd / cost_scale_usd)
    return np.asarray(np.argmax(utility, axis=-1))


class Router:
    """Base router: hyperparameters in `__init__`, learned state in attributes ending in `_` after `fit`."""

    name: ClassVar[str] = "router"
    uses_embeddings: ClassVar[bool] = True

    def __init__(self, embedder: str = "auto", seed: int = 0) -> None:
        self.embedder = embedder
        self.seed = seed

    # ---- the contract -------------------------------------------------------------------------------------------
    def fit(self, data: OutcomeDataset) -> Router:
        """Learn from outcomes: per-model mean cost and quality, then the subclass's own state."""
        import scipy.linalg  # noqa: F401 - load every BLAS before limiting threads (later loads escape the limit)
        import sklearn.decomposition  # noqa: F401
        from threadpoolctl import threadpool_limits

        # The matrices are small: one BLAS thread is fastest, and spare threads only spin on a shared machine.
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit_all(data)

    def _fit_all(self, data: OutcomeDataset) -> Router:
        if len(data) < 2:
            raise UserError(f"need at least 2 queries to fit a router, got {len(data)}")
        unknown = [m for m, n in zip(data.models, data.known.sum(axis=0), strict=True) if n == 0]
        if unknown:
            raise UserError(f"no known outcome for model(s) {', '.join(unknown)}: cannot learn anything about them")
        self.models_ = list(data.models)
        # Missing outcomes are skipped: each model's means are over the queries where it has an outcome.
        self.mean_cost_usd_ = np.nanmean(data.cost_usd, axis=0).astype(float)
        self.mean_quality_ = np.nanmean(data.quality, axis=0).astype(float)
        self.cost_scale_usd_ = float(max(self.mean_cost_usd_.max(), 1e-12))
        features = None
        if self.uses_embeddings:
            self.embedder_: Embedder = make_embedder(self.embedder).fit(data.prompts)
            features = self.embedder_.transform(data.prompts)
        self._fit(data, features)
        if len(self.models_) == 2:
            self.strong_share_lambdas_ = self._calibrate_strong_share(data, features)
        return self

    def predict_quality(self, prompts: Sequence[str]) -> np.ndarray:
        """Expected quality in [0, 1], shape [n_prompts, n_models] (columns in `models` order)."""
        self._check_fitted()
        features = self.embedder_.transform(list(prompts)) if self.uses_embeddings else None
        return self._predict(list(prompts), features)

    def expected_cost_usd(self, prompts: Sequence[str]) -> np.ndarray:
        """Expected dollars per call, shape [n_prompts, n_models]: each model's mean on the training data."""
        self._check_fitted()
        return np.broadcast_to(self.mean_cost_usd_, (len(prompts), len(self.models_)))

    def route(self, prompt: str, knob: float = 0.0) -> RouteDecision:
        """The model to call for `prompt` at trade-off `knob` (lambda >= 0; see the module docstring)."""
        return self.route_many([prompt], knob)[0]

    def route_many(self, prompts: Sequence[str], knob: float = 0.0) -> list[RouteDecision]:
        """`route` for a batch of prompts at one knob (one embedding call for the whole batch)."""
        if knob < 0 or not np.isfinite(knob):
            raise UserError(f"knob (lambda) must be a finite number >= 0, got {knob}")
        prompts = list(prompts)
        quality = self._quality_at(prompts, knob)
        cost = self.expected_cost_usd(prompts)
        chosen = choose(quality, cost, knob, self.cost_scale_usd_)
        decisions = []
        for i, j in enumerate(chosen):
            decisions.append(RouteDecision(
                model=self.models_[j], score=float(quality[i, j] - knob * cost[i, j] / self.cost_scale_usd_),
                expected_quality={m: float(q) for m, q in zip(self.models_, quality[i], strict=True)},
                expected_cost_usd={m: float(c) for m, c in zip(self.models_, cost[i], strict=True)},
                knob=float(knob)))
        return decisions

    def warm_up(self) -> Router:
        """Load what a first decision needs now (the embedding model; the cached ONNX export, built if absent), so
        a server's first request does not pay for it."""
        self._check_fitted()
        if self.uses_embeddings:
            self.embedder_.transform(["warm-up"])
        return self

    @property
    def fast_decisions(self) -> bool:
        """Whether one decision costs well under a millisecond of CPU (no embedding, or a static one), so a server
        may make it inline instead of on a worker thread."""
        return not self.uses_embeddings or bool(getattr(self.embedder_, "fast", False))

    @property
    def embedder_name(self) -> str | None:
        """The embeddings this router reads (`minilm-static`, `minilm-int8`, `tfidf`; None: none), for records."""
        self._check_fitted()
        return self.embedder_.name if self.uses_embeddings else None

    @property
    def models(self) -> list[str]:
        """The models this router chooses between, in column order."""
        self._check_fitted()
        return list(self.models_)

    @property
    def strong_model(self) -> str:
        """With two models: the dearer one (mean cost on the training data)."""
        self._check_fitted()
        return self.models_[int(np.argmax(self.mean_cost_usd_))]

    def knob_for_strong_share(self, share: float) -> float:
        """Two models only: the lambda that sends about `share` (0..1) of calls to the strong model.

        Calibrated on the training prompts with out-of-fold predictions, so it means the same on similar traffic.
        """
        self._check_fitted()
        if len(self.models_) != 2:
            raise UserError(f"a strong-model share needs exactly two models; this router has {len(self.models_)}")
        if not 0.0 <= share <= 1.0:
            raise UserError(f"strong-model share must be between 0 and 1, got {share}")
        lambdas = self.strong_share_lambdas_  # each training prompt's break-even lambda, sorted descending
        if share >= 1.0:
            return 0.0
        k = int(np.floor(share * len(lambdas)))
        # Send the k prompts whose break-even lambda is highest: any lambda just below the (k+1)-th value does it.
        if k >= len(lambdas):
            return 0.0
        return float(max(lambdas[k], 0.0))

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters, as given to `__init__`."""
        return {p: getattr(self, p) for p in inspect.signature(type(self).__init__).parameters if p != "self"}

    def save(self, path: str | Path) -> Path:
        """Write the fitted router into folder `path` (router.json + arrays.npz)."""
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        meta, arrays = self._state()
        base_arrays = {"mean_cost_usd_": self.mean_cost_usd_, "mean_quality_": self.mean_quality_}
        if hasattr(self, "strong_share_lambdas_"):
            base_arrays["strong_share_lambdas_"] = self.strong_share_lambdas_
        emb_meta = None
        if self.uses_embeddings:
            emb_meta, emb_arrays = self.embedder_.state()
            base_arrays.update(emb_arrays)
        doc = {"format": "truecost-router", "version": FORMAT_VERSION, "router": self.name,
               "params": self.get_params(), "models": self.models_, "cost_scale_usd": self.cost_scale_usd_,
               "embedder": emb_meta, "state": meta}
        np.savez(folder / ARRAYS_FILE, allow_pickle=False, **base_arrays, **arrays)
        (folder / ROUTER_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        return folder

    # ---- for subclasses -----------------------------------------------------------------------------------------
    def _fit(self, data: OutcomeDataset, features: np.ndarray | None) -> None:
        raise NotImplementedError

    def _predict(self, prompts: list[str], features: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def _quality_at(self, prompts: list[str], knob: float) -> np.ndarray:
        """The expected quality a decision at `knob` reads (a gated router looks closer at its close calls)."""
        return self.predict_quality(prompts)

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able learned state and named arrays, beyond what the base saves."""
        return {}, {}

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Inverse of `_state`."""

    def _out_of_fold_quality(self, data: OutcomeDataset, features: np.ndarray | None, folds: int = 5) -> np.ndarray:
        """Predictions for each training prompt from a copy fitted without it (K folds), for honest calibration."""
        n = len(data)
        folds = max(2, min(folds, n))
        order = np.random.default_rng(self.seed).permutation(n)
        out = np.empty_like(data.quality, dtype=float)
        for f in range(folds):
            test = np.sort(order[f::folds])
            train = np.setdiff1d(np.arange(n), test)
            clone = type(self)(**self.get_params())
            clone.models_, clone.mean_cost_usd_ = self.models_, self.mean_cost_usd_
            clone.mean_quality_, clone.cost_scale_usd_ = _nanmean_or(data.quality[train], self.mean_quality_), \
                self.cost_scale_usd_
            part = data.subset(train)
            clone._fit(part, None if features is None else features[train])
            out[test] = clone._predict([data.prompts[i] for i in test], None if features is None else features[test])
        return out

    def _calibrate_strong_share(self, data: OutcomeDataset, features: np.ndarray | None) -> np.ndarray:
        quality = self._out_of_fold_quality(data, features)
        strong = int(np.argmax(self.mean_cost_usd_))
        weak = 1 - strong
        gap_cost = (self.mean_cost_usd_[strong] - self.mean_cost_usd_[weak]) / self.cost_scale_usd_
        gap_quality = quality[:, strong] - quality[:, weak]
        # Break-even lambda per prompt: strong is chosen while lambda < gap_quality / gap_cost.
        lambdas = gap_quality / max(gap_cost, 1e-12)
        return np.sort(lambdas)[::-1].astype(float)

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise UserError(f"the {self.name} router is not fitted yet: call fit(data) or load_router(path)")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def _nanmean_or(values: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Column means over known values; `fallback` for a column with none known."""
    known = ~np.isnan(values)
    total = np.where(known, values, 0.0).sum(axis=0)
    count = known.sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), fallback)


def prompt_seed(prompt: str, seed: int) -> int:
    """A stable 64-bit seed from a prompt's text (same prompt, same random draw, across processes)."""
    digest = hashlib.blake2b(prompt.encode("utf-8"), digest_size=8, key=str(seed).encode()).digest()
    return int.from_bytes(digest, "little")


_REGISTRY: dict[str, type[Router]] = {}


def register_router(cls: type[Router]) -> type[Router]:
    """Class decorator: make a router loadable by its `name`."""
    _REGISTRY[cls.name] = cls
    return cls


def router_class(name: str) -> type[Router]:
    """The router class called `name`."""
    import truecost.route.routers  # noqa: F401 - registers the built-in routers

    if name not in _REGISTRY:
        raise UserError(f"unknown router {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def load_router(path: str | Path) -> Router:
    """Load a router saved by `Router.save` / `truecost route fit --out DIR` (JSON + .npz; no pickle)."""
    folder = Path(path)
    doc_path = folder / ROUTER_FILE
    if not doc_path.is_file():
        raise UserError(f"{folder} is not a saved router: {ROUTER_FILE} is missing (make one with `truecost route "
                        "fit --out DIR`)")
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{doc_path}: not valid JSON ({exc.msg})") from exc
    if doc.get("format") != "truecost-router" or doc.get("version") != FORMAT_VERSION:
        raise UserError(f"{doc_path}: not a truecost router of format version {FORMAT_VERSION}")
    cls = router_class(doc["router"])
    with np.load(folder / ARRAYS_FILE, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    # A hyperparameter an older truecost saved and this one no longer has (mf's Adam learning rate) only shaped
    # the fit, which the arrays already hold.
    accepted = inspect.signature(cls.__init__).parameters
    router = cls(**{k: v for k, v in doc["params"].items() if k in accepted})
    router.models_ = list(doc["models"])
    router.cost_scale_usd_ = float(doc["cost_scale_usd"])
    router.mean_cost_usd_ = arrays["mean_cost_usd_"]
    router.mean_quality_ = arrays["mean_quality_"]
    if "strong_share_lambdas_" in arrays:
        router.strong_share_lambdas_ = arrays["strong_share_lambdas_"]
    if doc.get("embedder") is not None:
        router.embedder_ = embedder_from_state(doc["embedder"], arrays)
    router._restore(doc.get("state") or {}, arrays)
    return router
