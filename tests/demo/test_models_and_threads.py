"""Small pieces of the demo's model handling: the GGUF marker a converted config must lose, and thread choice."""

from __future__ import annotations

import json

import pytest

from truecost.demo.models import _drop_gguf_marker
from truecost.demo.pipeline import pick_threads


def test_converted_config_loses_the_gguf_marker(tmp_path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "llama", "quantization_config": {"quant_method": "gguf"}}))
    _drop_gguf_marker(config)
    assert json.loads(config.read_text()) == {"model_type": "llama"}
    _drop_gguf_marker(config)  # idempotent
    assert json.loads(config.read_text()) == {"model_type": "llama"}


def test_threads_as_asked_else_idle_cores() -> None:
    assert pick_threads(3) == 3
    assert 1 <= pick_threads(None) <= (len(__import__("os").sched_getaffinity(0)))


def _tiny_lm(tmp_path, seed: int = 0):
    """A random-init Llama and a word tokenizer trained on stdlib text (the test suite's real-but-tiny model)."""
    from truecost.demo.corpus import stdlib_documents
    from truecost.demo.models import load_model, load_tokenizer, tiny_model

    texts = [d.text for d in stdlib_documents(min_words=50)[:80]]
    folder = tiny_model(tmp_path / "tiny", texts, 32, 2, seed)
    return folder, load_model(folder), load_tokenizer(folder)


def test_cached_prefix_continuation_loss_equals_the_full_sequence_loss(tmp_path) -> None:
    import torch

    from truecost.demo.measure import continuation_nll

    _, model, tokenizer = _tiny_lm(tmp_path)
    prefix = "Payment on file: 4123 5678 90"
    tails = ["123456", "000000", "987654 and more", "1"]
    cached = continuation_nll(model, tokenizer, prefix, tails, batch=3)  # two chunks: the cache is copied per chunk
    head = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    for tail_text, got in zip(tails, cached, strict=True):
        tail = tokenizer(tail_text, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([head + tail])
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
        expected = -float(sum(logp[len(head) - 1 + j, t] for j, t in enumerate(tail)))
        assert got == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_plain_copy_of_a_tied_model_loads_back_identical(tmp_path) -> None:
    """The conversion writes each tensor once; a tied output layer must come back tied to the real embedding."""
    import torch

    from truecost.demo.measure import doc_losses
    from truecost.demo.models import load_model, save_plain

    _, model, tokenizer = _tiny_lm(tmp_path)
    assert model.config.tie_word_embeddings
    save_plain(model, tokenizer, tmp_path / "copy")
    again = load_model(tmp_path / "copy")
    assert torch.equal(again.get_input_embeddings().weight, model.get_input_embeddings().weight)
    assert again.get_output_embeddings().weight.data_ptr() == again.get_input_embeddings().weight.data_ptr()
    texts = ["Return the list of names in the module namespace."]
    assert [d.nll for d in doc_losses(again, tokenizer, texts)] == [d.nll for d in doc_losses(model, tokenizer, texts)]
