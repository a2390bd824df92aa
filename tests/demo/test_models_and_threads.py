"""Small pieces of the demo's model handling: the GGUF marker a converted config must lose, and thread choice."""

from __future__ import annotations

import json
import os

import pytest

from truecost.demo.models import _drop_gguf_marker, publish
from truecost.demo.pipeline import pick_threads


def test_converted_config_loses_the_gguf_marker(tmp_path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "llama", "quantization_config": {"quant_method": "gguf"}}))
    _drop_gguf_marker(config)
    assert json.loads(config.read_text()) == {"model_type": "llama"}
    _drop_gguf_marker(config)  # idempotent
    assert json.loads(config.read_text()) == {"model_type": "llama"}


def _conversion(folder, marker: str):
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_text(marker)
    (folder / "_COMPLETE").write_text("done")
    return folder


def test_two_conversions_at_once_keep_one_complete_copy(tmp_path) -> None:
    """A review and a demo converting the same model at once: each writes its own folder, the first to finish is
    kept and the second drops its copy, instead of deleting the other's half-written files."""
    final = tmp_path / "models" / "M"
    first = _conversion(tmp_path / "models" / "M.partial-1", "first")
    second = _conversion(tmp_path / "models" / "M.partial-2", "second")
    assert publish(first, final) == final
    assert publish(second, final) == final
    assert (final / "model.safetensors").read_text() == "first" and (final / "_COMPLETE").is_file()
    assert sorted(p.name for p in final.parent.iterdir()) == ["M"]  # no partial copy left behind


def test_an_incomplete_folder_from_a_killed_run_is_replaced(tmp_path) -> None:
    final = tmp_path / "M"
    final.mkdir()
    (final / "config.json").write_text("{}")  # killed before _COMPLETE was written
    publish(_conversion(tmp_path / "M.partial-9", "new"), final)
    assert (final / "model.safetensors").read_text() == "new" and (final / "_COMPLETE").is_file()


def test_idle_omp_threads_sleep_unless_the_user_chose(monkeypatch) -> None:
    from truecost.demo.run import quiet_omp_threads

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    quiet_omp_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # a user's own choice wins
    quiet_omp_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_threads_as_asked_else_idle_cores() -> None:
    assert pick_threads(3) == 3
    assert 1 <= pick_threads(None) <= (len(__import__("os").sched_getaffinity(0)))


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A random-init Llama and a word tokenizer trained on stdlib text (the test suite's real-but-tiny model),
    built once for this module."""
    from truecost.demo.corpus import stdlib_documents
    from truecost.demo.models import load_model, load_tokenizer, tiny_model

    texts = [d.text for d in stdlib_documents(min_words=50)[:80]]
    folder = tiny_model(tmp_path_factory.mktemp("tiny") / "tiny", texts, 32, 2, 0)
    return folder, load_model(folder), load_tokenizer(folder)


def test_cached_prefix_continuation_loss_equals_the_full_sequence_loss(tiny_lm) -> None:
    import torch

    from truecost.demo.measure import continuation_nll

    _, model, tokenizer = tiny_lm
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
    empty, one = continuation_nll(model, tokenizer, prefix, ["", "1"])
    assert empty == 0.0 and one == pytest.approx(cached[3], rel=1e-4)  # nothing to predict, beside a real one
    with pytest.raises(ValueError):
        continuation_nll(model, tokenizer, "", tails)


def test_plain_copy_of_a_tied_model_loads_back_identical(tiny_lm, tmp_path) -> None:
    """The conversion writes each tensor once; a tied output layer must come back tied to the real embedding."""
    import torch

    from truecost.demo.measure import doc_losses
    from truecost.demo.models import load_model, save_plain

    _, model, tokenizer = tiny_lm
    assert model.config.tie_word_embeddings
    save_plain(model, tokenizer, tmp_path / "copy")
    again = load_model(tmp_path / "copy")
    assert torch.equal(again.get_input_embeddings().weight, model.get_input_embeddings().weight)
    assert again.get_output_embeddings().weight.data_ptr() == again.get_input_embeddings().weight.data_ptr()
    texts = ["Return the list of names in the module namespace."]
    assert [d.nll for d in doc_losses(again, tokenizer, texts)] == [d.nll for d in doc_losses(model, tokenizer, texts)]


def test_adapter_bank_arms_give_the_outputs_of_separately_loaded_models(tiny_lm, tmp_path) -> None:
    """Two random (non-zero) LoRA adapters on one base: each arm of the bank scores, generates and ranks like
    that adapter merged into a model loaded on its own."""
    import torch
    from peft import LoraConfig, get_peft_model

    from truecost.demo.measure import continuation_nll, doc_losses, generate
    from truecost.demo.models import AdapterBank, load_model

    folder, _, tokenizer = tiny_lm
    adapters = {}
    for k, arm in enumerate(("poor", "well")):
        torch.manual_seed(k)
        lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        get_peft_model(load_model(folder), lora).save_pretrained(tmp_path / arm)
        adapters[arm] = tmp_path / arm
    bank = AdapterBank(folder, adapters)
    texts = ["Return the list of names in the module namespace.", "Open a file and return a stream."]
    _review_target_matches_a_loaded_folder(bank.use("well"), tokenizer, tmp_path, adapters["well"], folder)
    seen = []
    for arm in ("poor", "well", "poor"):  # switching back gives the first arm's numbers again
        alone = load_model(folder, adapter=adapters[arm])
        banked = bank.use(arm)
        got = [d.nll for d in doc_losses(banked, tokenizer, texts)]
        assert got == pytest.approx([d.nll for d in doc_losses(alone, tokenizer, texts)], rel=1e-4)
        assert generate(banked, tokenizer, texts, max_new_tokens=5) == generate(alone, tokenizer, texts,
                                                                                max_new_tokens=5)
        assert continuation_nll(banked, tokenizer, texts[0], ["x", "y z"]) == pytest.approx(
            continuation_nll(alone, tokenizer, texts[0], ["x", "y z"]), rel=1e-4)
        seen.append(got)
    assert seen[0] != pytest.approx(seen[1], rel=1e-3)  # the two adapters really differ
    with pytest.raises(KeyError):
        bank.use("base")


def _review_target_matches_a_loaded_folder(model, tokenizer, tmp_path, adapter, folder) -> None:
    """The review's target around the bank's model scores as `truecost review` does on the merged model saved as a
    folder (the demo reviews without writing the model out)."""
    from truecost.demo.effects import LoadedTarget
    from truecost.demo.models import load_model
    from truecost.review.targets import HFTarget

    load_model(folder, adapter=adapter).save_pretrained(tmp_path / "merged")
    tokenizer.save_pretrained(tmp_path / "merged")
    requests = [("Which package?", " os"), ("Which package?", " json module"), ("", "plain text")]
    got = LoadedTarget("hf:demo-well", model, tokenizer).continuation_logprobs_batch(requests)
    want = HFTarget("hf:merged", tmp_path / "merged", device="cpu").continuation_logprobs_batch(requests)
    assert [[t for t, _ in row] for row in got] == [[t for t, _ in row] for row in want]
    for row_got, row_want in zip(got, want, strict=True):
        assert [v for _, v in row_got] == pytest.approx([v for _, v in row_want], rel=1e-4, abs=1e-5)
