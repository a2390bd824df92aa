"""Optional lm-evaluation-harness backend: `--tasks mmlu,hellaswag` runs lm-eval on the review's local model, in
lm-eval's own interpreter (it is not a truecost dependency: `pip install lm-eval` in a venv of its own and point
`--lm-eval-python` or TRUECOST_LM_EVAL_PYTHON at it), and its results and cost land in the same review.

Tasks load their data as lm-eval's task YAMLs say; for local data files give `--tasks-path DIR` (lm-eval's
`--include_path`) with task YAMLs whose `dataset_path: json` and `dataset_kwargs.data_files` name the files.
Per-document scores come from lm-eval's `--log_samples` files, so each metric gets a Wilson interval like every
other proportion of the review; the child process's CPU time is priced by truecost.estimate into the review's run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from truecost.errors import UserError
from truecost.review.results import Metric, make_metric

PER_DOC_METRICS = ("acc", "acc_norm", "exact_match")


@dataclass
class LmEvalRun:
    """What one lm-eval run gave: metrics, lm-eval's own numbers, and the child's CPU and wall seconds."""

    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0


def lm_eval_python(explicit: str | None = None) -> str:
    """The interpreter that has lm-eval: the argument, TRUECOST_LM_EVAL_PYTHON, or this one if it can import it."""
    chosen = explicit or os.environ.get("TRUECOST_LM_EVAL_PYTHON")
    if chosen:
        if not shutil.which(chosen) and not Path(chosen).is_file():
            raise UserError(f"--lm-eval-python {chosen}: no such interpreter")
        return chosen
    import importlib.util

    if importlib.util.find_spec("lm_eval") is None:
        raise UserError("--tasks needs lm-evaluation-harness: install it in its own venv "
                        "(python -m venv lm-eval-venv && lm-eval-venv/bin/pip install lm-eval) and pass "
                        "--lm-eval-python lm-eval-venv/bin/python")
    return sys.executable


def command(python: str, model_dir: Path, tasks: list[str], out_dir: Path, *, include_path: Path | None,
            limit: int | None, batch_size: int) -> list[str]:
    """lm-eval's command line for a local Hugging Face model on the CPU, logging every document's score."""
    cmd = [python, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32",
           "--tasks", ",".join(tasks), "--device", "cpu", "--batch_size", str(batch_size),
           "--output_path", str(out_dir), "--log_samples"]
    if include_path is not None:
        cmd += ["--include_path", str(include_path)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    return cmd


def parse_output(out_dir: Path) -> tuple[list[Metric], dict[str, Any]]:
    """Metrics from lm-eval's results_*.json and samples_<task>_*.jsonl under `out_dir`."""
    found = sorted(out_dir.rglob("results_*.json"))
    if not found:
        raise UserError(f"lm-eval wrote no results_*.json under {out_dir}")
    data = json.loads(found[-1].read_text(encoding="utf-8"))
    metrics: list[Metric] = []
    for task in sorted(data.get("results", {})):
        samples = [json.loads(line) for f in sorted(found[-1].parent.glob(f"samples_{task}_*.jsonl"))
                   for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        for name in PER_DOC_METRICS:
            rows = [float(s[name]) for s in samples if isinstance(s.get(name), int | float)]
            if rows:
                metrics.append(make_metric(f"lm_eval.{task}.{name}", rows,
                                           description=f"lm-eval {task} {name} (per-document scores)"))
    return metrics, {"results": data.get("results", {}), "n-samples": data.get("n-samples", {}),
                     "lm_eval_version": data.get("lm_eval_version") or data.get("git_hash")}


def run_lm_eval(python: str, model_dir: Path, tasks: list[str], work_dir: Path, *, include_path: Path | None = None,
                limit: int | None = None, batch_size: int = 8) -> LmEvalRun:
    """Run lm-eval in a child process; its CPU time is measured with os.wait4 (user + system)."""
    out_dir = work_dir / "lm_eval"
    cmd = command(python, model_dir, tasks, out_dir, include_path=include_path, limit=limit, batch_size=batch_size)
    wall0 = time.perf_counter()
    with open(work_dir / "lm_eval.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        tail = (work_dir / "lm_eval.log").read_text(encoding="utf-8", errors="replace")[-400:]
        raise UserError(f"lm-eval failed (exit {os.waitstatus_to_exitcode(status)}): {tail.strip()}")
    metrics, details = parse_output(out_dir)
    details["command"] = cmd
    return LmEvalRun(metrics, details, usage.ru_utime + usage.ru_stime, time.perf_counter() - wall0)
