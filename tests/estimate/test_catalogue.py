"""Catalogue sanity: orderings that must hold, prices compared like with like, TF32 named as such, interconnects
with sources, and Hugging Face ids resolved from a local hub cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from truecost.errors import UserError
from truecost.estimate.catalogue import find_gpu, find_model, gpus, price_basis, price_rows

SAME_CARD_MORE = [("A100 80GB", "A100 40GB"), ("H100 SXM", "H100 PCIe"), ("H200", "H100 SXM")]


@pytest.mark.parametrize(("bigger", "smaller"), SAME_CARD_MORE)
def test_memory_bandwidth_and_link_orderings(bigger: str, smaller: str) -> None:
    big, small = find_gpu(bigger), find_gpu(smaller)
    assert big.memory_gib >= small.memory_gib
    assert big.bandwidth_gb_s >= small.bandwidth_gb_s
    assert big.interconnect_gb_s >= small.interconnect_gb_s


def test_every_gpu_names_its_interconnect_with_a_source() -> None:
    for gpu in gpus():
        assert gpu.interconnect in ("nvlink", "pcie", "infinity-fabric", "none"), gpu.name
        assert gpu.interconnect_source, gpu.name
        if gpu.interconnect == "pcie":
            assert gpu.interconnect_gb_s <= 128 and not gpu.nvlink_class
    assert find_gpu("L40S").interconnect == "pcie" and find_gpu("H100 SXM").interconnect == "nvlink"


def test_tf32_is_a_tensor_rate_apart_from_cuda_core_fp32() -> None:
    for gpu in gpus():
        if "tf32" in gpu.peak_tflops:
            assert gpu.peak_tflops["tf32"] > gpu.peak_tflops["fp32"], gpu.name
    assert find_gpu("A100 80GB").peak_tflops == pytest.approx({"fp32": 19.5, "tf32": 156, "fp16": 312, "bf16": 312})
    with pytest.raises(UserError, match="no tf32"):
        find_gpu("V100").peak_flops("tf32")


def test_prices_at_one_provider_follow_the_cards() -> None:
    """Wherever one provider prices both cards of a pair at the same pricing, the better card costs no less."""
    rows = [r for r in price_rows() if r.current]
    checked = 0
    for bigger, smaller in SAME_CARD_MORE:
        for a, b in ((a, b) for a in rows for b in rows if a.gpu == bigger and b.gpu == smaller):
            if a.provider == b.provider and a.pricing == b.pricing:
                assert a.usd_per_gpu_hour >= b.usd_per_gpu_hour, (a, b)
                checked += 1
    assert checked >= 3


def test_default_price_inversions_are_explained_by_market() -> None:
    """A default never mixes markets; where a better card's default is cheaper, the two come from different markets
    (e.g. A100 40GB is priced only by hyperscalers in the catalogue, A100 80GB by neoclouds)."""
    for bigger, smaller in SAME_CARD_MORE:
        big, small = price_basis(find_gpu(bigger)), price_basis(find_gpu(smaller))
        assert len({r.market for r in big.rows}) == 1 and len({r.market for r in small.rows}) == 1
        if big.usd_per_gpu_hour < small.usd_per_gpu_hour:
            assert big.market != small.market, (big.describe(), small.describe())
    assert "hyperscaler" in price_basis(find_gpu("A100 40GB")).describe()


def test_no_current_row_names_an_offer_that_does_not_exist() -> None:
    aws_pcie = [r for r in price_rows() if r.gpu == "H100 PCIe" and r.provider == "AWS"]
    assert aws_pcie and not any(r.current for r in aws_pcie) and all(r.note for r in aws_pcie)
    assert {r.market for r in price_rows()} <= {"hyperscaler", "neocloud", "marketplace", "assumption"}


def test_hf_model_id_from_the_local_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(UserError, match="no config.json for it in the HF cache"):
        find_model("meta-llama/Meta-Llama-3-8B")
    snapshot = tmp_path / "models--meta-llama--Meta-Llama-3-8B" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    # the real Meta-Llama-3-8B config (as published on the hub), written here by hand
    snapshot.joinpath("config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
        "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "vocab_size": 128256, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "tie_word_embeddings": False, "hidden_act": "silu", "torch_dtype": "bfloat16"}))
    model = find_model("meta-llama/Meta-Llama-3-8B")
    assert model.name == "meta-llama/Meta-Llama-3-8B" and "HF cache" in model.source
    assert model.architecture.params_total == 8_030_261_248  # Meta's published 8.03B, exactly as counted
    with pytest.raises(UserError, match="unknown model"):
        find_model("meta-llama/Not-A-Model")
