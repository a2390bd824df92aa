"""The proof machinery, small: two arms trained through `truecost.train` at the same compute (a tiny random-init
model, seconds), scored on held-out pairs, compared with a paired interval and a verdict that cannot be a win
unless the interval says so."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.synth.fake_openai import serve
from truecost.ledger import Ledger
from truecost.synth import make_settings, run_synth
from truecost.synth.proof import (
    ArmResult,
    answer_nll,
    compare_arms,
    load_trained,
    train_arm,
    train_supports_chat,
    training_rows,
    verdict,
)


def test_verdict_follows_the_interval() -> None:
    assert verdict(-0.3, -0.01).startswith("synthetic data helped")
    assert verdict(0.02, 0.4).startswith("synthetic data hurt")
    assert verdict(-0.2, 0.1).startswith("synthetic data did not help")
    assert verdict(math.nan, math.nan).startswith("not measured")


def test_answer_nll_equals_the_masked_loss_transformers_computes(tiny_model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    pairs = [("What does the cache keep?", "The most recently used pages."), ("Who retries?", "The client.")]
    ours = answer_nll(model, tokenizer, pairs, chat=False)
    for (prompt, response), value in zip(pairs, ours, strict=True):
        prefix = f"Question: {prompt}\nAnswer: "
        ids = tokenizer(prefix + response, add_special_tokens=False)["input_ids"]
        start = len(tokenizer(prefix, add_special_tokens=False)["input_ids"])
        labels = [-100] * start + ids[start:]
        with torch.no_grad():
            loss = model(torch.tensor([ids]), labels=torch.tensor([labels])).loss
        assert value == pytest.approx(float(loss), rel=1e-5)


@pytest.mark.slow
def test_two_arms_at_equal_compute_with_an_interval(tiny_model: Path, seed_docs: Path, tmp_path: Path) -> None:
    chat = train_supports_chat()
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    real = [(f"What does module {i} do?", f"Module {i} reads the configuration file and reports errors.")
            for i in range(6)]
    heldout = [(f"What does module {i} do?", f"Module {i} reads the configuration file and reports errors.")
               for i in range(6, 14)]
    with serve() as (url, _):
        synth = run_synth(make_settings(generator=f"openai:{url}#gpt-4o-mini", seeds=[str(seed_docs)]),
                          tmp_path / "synth", ledger=ledger)
    synthetic = [(e.prompt, e.response) for e in synth.examples]
    assert synthetic
    base = {"model": {"path": str(tiny_model)}, "max_steps": 4, "micro_batch": 2, "seq_len": 64,
            "eval": {"every_steps": 4, "batches": 1}, "data": {"val_fraction": 0.2}, "optim": {"warmup_steps": 0},
            "hardware": {"device": "cpu", "threads": 1}}
    arms = []
    for name, pairs, synth_usd in (("real", real, 0.0), ("real+synthetic", real + synthetic,
                                                         synth.report["cost"]["total_usd"])):
        result = train_arm(name.replace("+", "_"), training_rows(pairs, chat), base, tmp_path / "arms",
                           ledger=ledger, chat=chat)
        model, tokenizer = load_trained(Path(result["output_dir"]), tiny_model)
        arms.append(ArmResult(name, len(pairs), len(pairs) - len(real), result,
                              answer_nll(model, tokenizer, heldout, chat=chat), synth_usd))
    report = compare_arms(*arms)
    a, b = report["arms"]
    assert a["steps"] == b["steps"] == 4  # the same compute: same steps and batch
    assert a["heldout_items"] == b["heldout_items"] == len(heldout)
    assert b["total_usd"] == pytest.approx(b["train_usd"] + synth.report["cost"]["total_usd"])
    assert report["difference_low"] <= report["difference_nll"] <= report["difference_high"]
    assert report["verdict"] == verdict(report["difference_low"], report["difference_high"])
    assert {r.kind for r in ledger.list_runs()} == {"synth", "train"}
