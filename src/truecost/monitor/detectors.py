"""Drift detectors with one contract: `fit(reference, horizon_windows, window_rows)`, then `score(window)`.

Hyperparameters go to `__init__` (with `alpha`, the detector's share of the stream's false-alarm budget),
learned state ends in `_`, and `score` returns a `Signal`. Sequential detectors keep their running state between
`score` calls; `fit` resets it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import numpy as np

from truecost.monitor.features import Batch
from truecost.monitor.stats import (
    Array,
    calibrate_cusum_threshold,
    categories_p_value,
    cusum_path,
    exceedance_p_value,
    ks_p_value,
    mean_shift_p_value,
    median_bandwidth,
    mmd_permutation_test,
    mmd_spectral_null,
    psi,
    spectral_p_value,
)


@dataclass
class Signal:
    """What one detector says about one window."""

    score: float
    alarm: bool
    p_value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: score, p_value (when the test has one), alarm, then the details."""
        out: dict[str, Any] = {"score": _round(self.score)}
        if self.p_value is not None:
            out["p_value"] = _round(self.p_value)
        out["alarm"] = bool(self.alarm)
        out.update({k: _round(v) for k, v in self.details.items()})
        return out


def _round(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(f"{float(value):.6g}")
    return value


class Detector(ABC):
    """Fit on a reference window, then score current windows one by one."""

    name: str = "detector"

    def __init__(self, alpha: float = 0.05) -> None:
        self.alpha = alpha

    @abstractmethod
    def fit(self, reference: Batch, horizon_windows: int, window_rows: int) -> Self:
        """Learn the reference and spread `alpha` over `horizon_windows` windows of about `window_rows` rows."""

    @abstractmethod
    def score(self, window: Batch) -> Signal:
        """The signal for the next window of the stream."""


def _bonferroni(p_values: list[float]) -> float:
    return min(1.0, len(p_values) * min(p_values)) if p_values else 1.0


class InputDriftDetector(Detector):
    """Prompt drift: kernel MMD on embeddings (permutation test) plus K-S and chi-square on cheap features.

    The window's p-value is the Bonferroni-corrected smallest of its tests; the alarm threshold is
    `alpha / horizon_windows`, so a stream without drift alarms in at most `alpha` of streams.
    """

    name = "input_drift"

    def __init__(self, alpha: float = 0.05, permutations: int = 200, max_reference: int = 300, seed: int = 0) -> None:
        super().__init__(alpha)
        self.permutations, self.max_reference, self.seed = permutations, max_reference, seed

    def fit(self, reference: Batch, horizon_windows: int, window_rows: int) -> Self:
        self.rng_ = np.random.default_rng(self.seed)
        keep = np.arange(len(reference.embeddings))
        if len(keep) > self.max_reference:
            keep = np.sort(self.rng_.choice(keep, self.max_reference, replace=False))
        self.embeddings_ = reference.embeddings[keep]
        self.bandwidth_ = median_bandwidth(self.embeddings_)
        # Enough null draws to resolve the smallest p-value that can still alarm after the Bonferroni steps.
        draws = int(min(max(20_000, 20 * 4 * max(horizon_windows, 1) / self.alpha), 200_000))
        self.spectral_null_ = mmd_spectral_null(self.embeddings_, self.bandwidth_, self.rng_, draws=draws)
        self.numeric_ = reference.numeric
        self.language_ = reference.language
        self.threshold_ = self.alpha / max(horizon_windows, 1)
        return self

    def score(self, window: Batch) -> Signal:
        mmd2, p_permutation = mmd_permutation_test(self.embeddings_, window.embeddings, self.bandwidth_,
                                                   self.permutations, self.rng_)
        p_spectral = spectral_p_value(mmd2, len(self.embeddings_), len(window.embeddings), self.spectral_null_)
        # The larger of two nulls: permutations are exact in the bulk, the spectral draws keep the heavy tail.
        tests = {"embedding_p_value": max(p_permutation, p_spectral)}
        for name, values in window.numeric.items():
            if name in self.numeric_:
                tests[f"{name}_p_value"] = ks_p_value(self.numeric_[name], values)
        tests["language_p_value"] = categories_p_value(self.language_, window.language)
        p_value = _bonferroni(list(tests.values()))
        details: dict[str, Any] = {**tests, "prompt_chars_psi": psi(self.numeric_["prompt_chars"],
                                                                    window.numeric["prompt_chars"])}
        return Signal(score=mmd2, p_value=p_value, alarm=p_value < self.threshold_, details=details)


QualitySource = Literal["labels", "ood_proxy"]


class QualityDriftDetector(Detector):
    """A fall in quality, by a one-sided CUSUM whose threshold is simulated to hold the false-alarm rate.

    Source `labels`: the quality column itself (correctness flags or 0..1 scores). Source `ood_proxy`, when the
    stream has no labels: each prompt counts 0 when its nearest reference neighbour is farther than the
    reference's own 95th-percentile nearest-neighbour distance, else 1, so the signal is the excess share of
    prompts unlike anything in the reference, on which the model's quality is unknown.
    """

    name = "quality_drift"

    def __init__(self, alpha: float = 0.05, shift: float = 0.10, source: QualitySource = "labels",
                 max_reference: int = 300, seed: int = 0) -> None:
        super().__init__(alpha)
        self.shift, self.source, self.max_reference, self.seed = shift, source, max_reference, seed

    def fit(self, reference: Batch, horizon_windows: int, window_rows: int) -> Self:
        rng = np.random.default_rng(self.seed)
        if self.source == "labels":
            values = reference.frame["quality"].dropna().to_numpy(dtype=float)
        else:
            keep = np.arange(len(reference.embeddings))  # the featurised rows: a sample of a large reference
            if len(keep) > self.max_reference:
                keep = np.sort(rng.choice(keep, self.max_reference, replace=False))
            self.embeddings_ = reference.embeddings[keep]
            similarity = self.embeddings_ @ self.embeddings_.T
            np.fill_diagonal(similarity, -np.inf)
            nearest = 1.0 - similarity.max(1)
            self.ood_distance_ = float(np.quantile(nearest, 0.95))
            values = (nearest <= self.ood_distance_).astype(float)
        if len(values) < 10:
            raise ValueError("the reference needs at least 10 quality values")
        self.reference_values_ = values
        self.target_ = float(values.mean())
        self.slack_ = self.shift / 2.0
        self.threshold_ = calibrate_cusum_threshold(values, horizon_windows * window_rows, self.slack_, self.alpha,
                                                    rng)
        self.level_ = 0.0
        self.seen_: list[float] = []
        self.last_zero_ = 0  # index in `seen_` after which the current excursion began
        self.change_index_: int | None = None
        self.alarm_index_: int | None = None
        return self

    def window_values(self, window: Batch) -> Array:
        """The per-row quality values this detector tracks for `window`."""
        if self.source == "labels":
            return window.frame["quality"].dropna().to_numpy(dtype=float)
        if len(window) == 0:
            return np.zeros(0)
        nearest = 1.0 - (window.embeddings @ self.embeddings_.T).max(1)
        return (nearest <= self.ood_distance_).astype(float)

    def score(self, window: Batch) -> Signal:
        values = self.window_values(window)
        path = cusum_path(values, self.target_, self.slack_, start=self.level_)
        offset = len(self.seen_)
        for i, level in enumerate(path):
            if level == 0.0:
                self.last_zero_ = offset + i + 1
            elif level > self.threshold_ and self.change_index_ is None:
                self.change_index_ = self.last_zero_
                self.alarm_index_ = offset + i + 1
        self.seen_.extend(values.tolist())
        peak = float(path.max()) if len(path) else self.level_
        self.level_ = float(path[-1]) if len(path) else self.level_
        details = {"source": self.source, "n_values": len(values),
                   "window_mean": float(values.mean()) if len(values) else None,
                   "reference_mean": self.target_, "cusum": self.level_, "threshold": self.threshold_}
        return Signal(score=self.level_ / self.threshold_, alarm=peak > self.threshold_, details=details)

    def estimate_drop(self, min_after_alarm: int = 20) -> tuple[float, float, int, str]:
        """(quality drop, its standard error, values used, basis) where basis says which values were used.

        `after_alarm`: only values after the alarm, which played no part in raising it, so the estimate is
        free of the winner's curse (an alarm fires where values happened to be low). `since_change`: the alarm
        is too recent, so values since the CUSUM change point (where the alarming excursion left zero; biased
        high, good only for "watch"). `all`: no alarm, the whole stream.
        """
        if self.alarm_index_ is not None and len(self.seen_) - self.alarm_index_ >= min_after_alarm:
            start, basis = self.alarm_index_, "after_alarm"
        elif self.change_index_ is not None:
            start, basis = self.change_index_, "since_change"
        else:
            start, basis = 0, "all"
        after = np.asarray(self.seen_[start:], dtype=float)
        if len(after) == 0:
            return 0.0, 0.0, 0, basis
        ref = self.reference_values_
        drop = self.target_ - float(after.mean())
        se = float(np.sqrt(ref.var(ddof=1) / len(ref) + (after.var(ddof=1) if len(after) > 1 else 0.25) / len(after)))
        return drop, se, len(after), basis


class OpsDriftDetector(Detector):
    """Latency p95 and cost per request against the reference.

    Latency: Fisher's test that more of the window exceeds the reference p95 than the reference itself does.
    Cost: one-sided Mann-Whitney. Either alarms only when also up by at least `min_increase` (relative).
    """

    name = "ops_drift"

    def __init__(self, alpha: float = 0.05, min_increase: float = 0.10) -> None:
        super().__init__(alpha)
        self.min_increase = min_increase

    def fit(self, reference: Batch, horizon_windows: int, window_rows: int) -> Self:
        frame = reference.frame
        self.latency_ = frame["latency_ms"].dropna().to_numpy(dtype=float)
        self.cost_ = frame["cost_usd"].dropna().to_numpy(dtype=float)
        self.threshold_ = self.alpha / max(horizon_windows, 1)
        return self

    def score(self, window: Batch) -> Signal:
        frame = window.frame
        latency = frame["latency_ms"].dropna().to_numpy(dtype=float)
        cost = frame["cost_usd"].dropna().to_numpy(dtype=float)
        details: dict[str, Any] = {}
        p_values: list[float] = []
        ratios: list[float] = []
        checks: list[tuple[float, float]] = []
        if len(self.latency_) >= 20 and len(latency) >= 5:
            ref_p95, p_latency = exceedance_p_value(self.latency_, latency)
            ratio = float(np.quantile(latency, 0.95)) / ref_p95 if ref_p95 > 0 else 1.0
            details.update(latency_p95_ms=float(np.quantile(latency, 0.95)), reference_latency_p95_ms=ref_p95,
                           latency_p95_ratio=ratio, latency_p_value=p_latency)
            p_values.append(p_latency)
            ratios.append(ratio)
            checks.append((p_latency, ratio))
        if len(self.cost_) >= 2 and len(cost) >= 2:
            ref_mean = float(self.cost_.mean())
            ratio = float(cost.mean()) / ref_mean if ref_mean > 0 else 1.0
            p_cost = mean_shift_p_value(self.cost_, cost)
            details.update(cost_per_request_usd=float(cost.mean()), reference_cost_per_request_usd=ref_mean,
                           cost_ratio=ratio, cost_p_value=p_cost)
            p_values.append(p_cost)
            ratios.append(ratio)
            checks.append((p_cost, ratio))
        level = self.threshold_ / max(len(checks), 1)
        alarm = any(p < level and ratio >= 1.0 + self.min_increase for p, ratio in checks)
        return Signal(score=max(ratios) if ratios else 1.0, p_value=_bonferroni(p_values) if p_values else None,
                      alarm=alarm, details=details)
