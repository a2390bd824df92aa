"""A tiny model on real text (the standard library's docstrings), small enough that a run takes seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from truecost.train import TrainConfig, make_config

TINY: dict[str, Any] = {
    "name": "t",
    "model": {"architecture": {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
                               "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
                               "max_position_embeddings": 128, "tie_word_embeddings": True}},
    "data": {"source": "builtin:python-docs", "max_chars": 250_000, "val_fraction": 0.08},
    "tokenizer": {"vocab_size": 512},
    "precision": "fp32",  # bit-for-bit repeatable, for the resume test
    "seq_len": 64,
    "micro_batch": 8,
    "max_steps": 40,
    "log_every": 1000,
    "optim": {"lr": 0.01, "warmup_steps": 5},
    "eval": {"every_steps": 10, "batches": 6},
    "hardware": {"threads": 1},
}


def tiny(tmp_path: Path, **overrides: Any) -> TrainConfig:
    """The tiny config, writing under `tmp_path`, with section-wise overrides."""
    return make_config(TINY, output_dir=str(tmp_path / "runs" / "{name}"), **overrides)


@pytest.fixture
def ledger(tmp_path: Path) -> Any:
    from truecost.ledger import Ledger

    return Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
