"""Fixtures for synth: seed documents written for the checks, and a tiny random-init causal LM built from a config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# Seed documents whose first sentences are long enough to carry 13-grams (the fake server answers with them).
DOCS = {
    "sched": "The scheduler assigns every incoming job to the least loaded worker and records the decision in the "
             "audit log for later review. It retries a failed job twice before it gives up and alerts the operator.",
    "cache": "The cache keeps the most recently used pages in memory and evicts the oldest page when the memory "
             "budget is exceeded by a new page. Pages that are written are flushed to disk first.",
    "parser": "The parser reads the configuration file line by line, skips comments that start with a hash sign, "
              "and reports the first malformed line with its number. Values may span lines with a backslash.",
    "retry": "The client waits longer after each failed request, doubling the delay up to a ceiling of twenty "
             "seconds, and adds random jitter so that many clients do not retry at the same moment.",
    "ledger": "The ledger stores every run with its wall time, its processor seconds and its cost in dollars, so "
              "that a team can see where the money went over the month. It can be shared through a database server.",
    "router": "The router sends easy questions to the small model and hard ones to the large model, using a "
              "classifier trained on past outcomes to tell them apart. It falls back to the large model on errors.",
}


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def seed_docs(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "seeds.jsonl", [{"id": k, "text": v} for k, v in DOCS.items()])


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with random weights and a byte-level BPE tokenizer trained on the seed texts."""
    from truecost.demo.models import tiny_model as build

    return build(tmp_path_factory.mktemp("tiny") / "model", list(DOCS.values()) * 4, hidden_size=32, layers=2, seed=0)
