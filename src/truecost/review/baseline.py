"""Compare a review with a previous one: which metrics got significantly worse, and which of those fail CI."""

from __future__ import annotations

import fnmatch
import math
from pathlib import Path
from typing import Any

from truecost.errors import UserError
from truecost.review.files import read_json
from truecost.review.results import SCHEMA, Metric
from truecost.review.stats import compare


def load_baseline(path: Path | str) -> dict[str, Metric]:
    """The metrics of a previous results.json, by name."""
    data = read_json(path, "baseline")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("metrics"), list):
        raise UserError(f"{path}: not a truecost review results.json (schema {SCHEMA})")
    metrics = {}
    for i, row in enumerate(data["metrics"]):
        if not isinstance(row, dict) or "name" not in row or "statistic" not in row:
            raise UserError(f"{path}: metrics[{i}]: needs fields 'name' and 'statistic'")
        metrics[row["name"]] = Metric.from_dict(row)
    return metrics


def find_regressions(current: list[Metric], baseline: dict[str, Metric], *, alpha: float = 0.05,
                     seed: int = 0) -> list[dict[str, Any]]:
    """One entry per metric present in both runs (with per-item values); `regression` marks significant ones."""
    out = []
    for metric in current:
        before = baseline.get(metric.name)
        if before is None or not metric.values or not before.values or before.statistic != metric.statistic:
            continue
        c = compare(metric.values, before.values, metric.statistic, metric.better, metric.ideal, alpha=alpha,
                    seed=seed)
        out.append({"metric": metric.name, "baseline": _json_float(c.baseline), "current": _json_float(c.current),
                    "worse_by": _json_float(c.worse_by),
                    "worse_by_ci": [_json_float(c.worse_by_low), _json_float(c.worse_by_high)],
                    "p_value": c.p_value, "regression": c.regression})
    return out


def _json_float(value: float) -> float | None:
    """JSON has no NaN: an undefined number (an interval of one item) is null."""
    return value if math.isfinite(value) else None


def matches(selector: str, metric_name: str) -> bool:
    """`any`, a suite (`security`), a metric name or a glob (`bias.bbq.*`) selects a metric."""
    selector = selector.strip()
    if selector in ("any", "all", "*"):
        return True
    if "." not in selector and not any(ch in selector for ch in "*?["):
        return metric_name.startswith(selector + ".")
    return fnmatch.fnmatchcase(metric_name, selector)


def failed_checks(regressions: list[dict[str, Any]], fail_on: list[str], security_findings: list[str]) -> list[str]:
    """The reasons to fail CI: selected significant regressions, and security findings when `findings` is chosen."""
    reasons = []
    for r in regressions:
        if r["regression"] and any(matches(s, r["metric"]) for s in fail_on if s != "findings"):
            was, now = (f"{v:.4g}" if v is not None else "-" for v in (r["baseline"], r["current"]))
            reasons.append(f"regression: {r['metric']} {was} -> {now} (p={r['p_value']:.3f})")
    if "findings" in fail_on:
        reasons += [f"security finding: {f}" for f in security_findings]
    return reasons
