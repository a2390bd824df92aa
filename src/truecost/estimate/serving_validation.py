"""The serving estimate against published serving measurements (`data/serving_measurements.csv`).

Each row is a vendor-published measurement with its model, GPU, precision, tensor parallelism, batch, prompt and
output lengths, source, URL and date. Throughput rows are offline static batches (output tokens per second per
GPU); latency rows are the time to the first token of one request. The estimate sees the same settings and its
default assumptions (`serving.SERVE_ASSUMPTIONS`), never the measured value.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from truecost.estimate.catalogue import find_gpu, find_model
from truecost.estimate.serving import Precision, first_token_ms, static_batch_output_tokens_per_s


@dataclass(frozen=True)
class ServingMeasurement:
    """One published serving figure and the settings it was measured at."""

    model: str
    gpu: str
    precision: Precision
    kv_bytes: float
    tensor_parallel: int
    batch: int
    prompt_tokens: int
    output_tokens: int
    metric: str  # output_tokens_per_s_per_gpu | first_token_ms
    value: float
    source: str
    url: str
    source_date: str


@lru_cache(maxsize=1)
def serving_measurements() -> tuple[ServingMeasurement, ...]:
    """Every row of data/serving_measurements.csv."""
    text = resources.files("truecost.estimate").joinpath("data", "serving_measurements.csv").read_text(
        encoding="utf-8")
    return tuple(ServingMeasurement(
        model=r["model"], gpu=r["gpu"], precision=r["precision"],  # type: ignore[arg-type]
        kv_bytes=1.0 if r["kv_cache_precision"] == "fp8" else 2.0, tensor_parallel=int(r["tensor_parallel"]),
        batch=int(r["batch"]), prompt_tokens=int(r["prompt_tokens"]), output_tokens=int(r["output_tokens"]),
        metric=r["metric"], value=float(r["value"]), source=r["source"], url=r["url"], source_date=r["source_date"])
        for r in csv.DictReader(text.splitlines()))


def predict(m: ServingMeasurement) -> float:
    """The serving estimate's figure for the measurement's settings."""
    arch, gpu = find_model(m.model).architecture, find_gpu(m.gpu)
    if m.metric == "first_token_ms":
        return first_token_ms(arch, gpu, tensor_parallel=m.tensor_parallel, prompt_tokens=m.prompt_tokens,
                              precision=m.precision)
    return static_batch_output_tokens_per_s(arch, gpu, tensor_parallel=m.tensor_parallel, batch=m.batch,
                                            prompt_tokens=m.prompt_tokens, output_tokens=m.output_tokens,
                                            precision=m.precision, kv_bytes=m.kv_bytes)


def validate() -> dict[str, Any]:
    """Predicted beside measured for every row; median absolute error overall and per metric."""
    rows: list[dict[str, Any]] = []
    for m in serving_measurements():
        predicted = predict(m)
        rows.append({"model": m.model, "gpu": m.gpu, "precision": m.precision, "tp": m.tensor_parallel,
                     "batch": m.batch, "prompt": m.prompt_tokens, "output": m.output_tokens, "metric": m.metric,
                     "measured": m.value, "predicted": predicted, "error": predicted / m.value - 1.0})
    by_metric = {metric: statistics.median(abs(r["error"]) for r in rows if r["metric"] == metric)
                 for metric in sorted({r["metric"] for r in rows})}
    return {"rows": rows, "n": len(rows), "median_abs_error": statistics.median(abs(r["error"]) for r in rows),
            "median_abs_error_by_metric": by_metric}
