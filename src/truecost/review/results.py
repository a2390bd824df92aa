"""The shape of a review's output: metrics with intervals, per-suite details, cost, regressions."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from truecost.review.stats import confidence_interval

SCHEMA = "truecost.review/1"


@dataclass
class Metric:
    """One number of the review with its 95% interval and the per-item rows it came from."""

    name: str  # e.g. "bias.bbq.bias_score_ambiguous"
    value: float
    ci_low: float
    ci_high: float
    n: int
    statistic: str  # how `values` turn into `value` (see truecost.review.stats.STATISTICS)
    better: str  # "higher", "lower" or "ideal" (closest to `ideal` is best)
    ideal: float | None = None
    unit: str = ""
    description: str = ""
    values: list[Any] = field(default_factory=list)
    ci_method: str = ""  # "wilson" (proportions), "bca", "percentile", "constant" or "none" (see review.stats)

    @property
    def suite(self) -> str:
        return self.name.split(".", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("value", "ci_low", "ci_high"):
            if isinstance(data[key], float) and not math.isfinite(data[key]):
                data[key] = None  # JSON has no NaN
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metric:
        fields: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__ if k in data}
        for key in ("value", "ci_low", "ci_high"):
            if fields.get(key) is None:
                fields[key] = float("nan")
        return cls(**fields)


def make_metric(name: str, values: list[Any], *, statistic: str = "mean", better: str = "higher",
                ideal: float | None = None, unit: str = "", description: str = "", seed: int = 0,
                n_resamples: int = 1000) -> Metric:
    """A metric from its per-item rows, with a 95% interval (Wilson for proportions, else BCa bootstrap)."""
    value, low, high, method = confidence_interval(values, statistic, n_resamples=n_resamples, seed=seed)
    rounded = [[round(float(x), 6) for x in v] if isinstance(v, list | tuple) else round(float(v), 6)
               for v in values]
    return Metric(name=name, value=value, ci_low=low, ci_high=high, n=len(values), statistic=statistic,
                  better=better, ideal=ideal, unit=unit, description=description, values=rounded,
                  ci_method=method)


@dataclass
class SuiteResult:
    """What one suite produced: its metrics, what it ran on, and readable examples."""

    suite: str
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # datasets not run, with the reason
    findings: list[str] = field(default_factory=list)  # problems found (security), one line each
    items: list[dict[str, Any]] = field(default_factory=list)  # every item: prompt, answer, verdict, who decided

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "metrics": [m.name for m in self.metrics], "details": self.details,
                "skipped": self.skipped, "findings": self.findings, "items": self.items}
