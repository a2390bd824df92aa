"""Shared helpers for the route tests: the shared routing sample, converted on the fly (never copied here)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from truecost.config import Config
from truecost.route.importers import import_routellm, import_routerbench
from truecost.route.outcomes import OutcomeDataset, concat_outcomes, read_outcomes, write_outcomes

# RouteLLM's paper priced GPT-4-Turbo at $10/$30 and Mixtral-8x7B at $0.6/$0.6 per 1M input/output tokens (2024).
MMLU_PRICES = {"route": {"prices": {
    "gpt-4-1106-preview": {"input_usd_per_1m": 10.0, "output_usd_per_1m": 30.0},
    "mistralai/Mixtral-8x7B-Instruct-v0.1": {"input_usd_per_1m": 0.6, "output_usd_per_1m": 0.6}}}}


def mmlu_config() -> Config:
    return Config.model_validate(MMLU_PRICES)


@lru_cache(maxsize=1)
def _scratch() -> Path:
    """One scratch folder per test process for the converted files (removed at exit)."""
    path = Path(tempfile.mkdtemp(prefix="truecost-route-tests-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@lru_cache(maxsize=2)
def _mmlu(root: str) -> OutcomeDataset:
    sample = Path(root) / "routing_sample" / "routellm_mmlu"
    path = _scratch() / "mmlu.jsonl"
    write_outcomes(import_routellm(sample / "responses", sample / "contaminated_prompts.jsonl"), path)
    return read_outcomes(path, mmlu_config())


def mmlu(shared_data: Path) -> OutcomeDataset:
    """The MMLU pair (GPT-4-1106 vs Mixtral), contaminated prompts removed."""
    return _mmlu(str(shared_data))


@lru_cache(maxsize=2)
def _routerbench(root: str) -> OutcomeDataset:
    parts = []
    for name in ("winograde_train.csv", "mbpp_train.csv"):
        path = _scratch() / (name + ".jsonl")
        write_outcomes(import_routerbench(Path(root) / "routing_sample" / "routerbench" / name), path)
        parts.append(read_outcomes(path))
    return concat_outcomes(parts)


def routerbench(shared_data: Path) -> OutcomeDataset:
    """RouterBench's Winogrande and MBPP queries, 11 models, real per-query cost."""
    return _routerbench(str(shared_data))
