"""Serving: KV cache per token against the cache a real tiny `transformers` model fills (GQA, sliding window,
MLA latent), and the roofline's monotonic behaviour."""

from __future__ import annotations

from typing import Any

import pytest

from truecost.errors import UserError
from truecost.estimate import architecture_from_hf_config
from truecost.estimate.catalogue import find_gpu, models
from truecost.estimate.serving import estimate_serving, kv_cache_bytes_per_token

SMALL = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=256)
CASES: dict[str, dict[str, Any]] = {
    "llama": SMALL,
    "mistral": {**SMALL, "sliding_window": 8},
    "gemma2": {**SMALL, "head_dim": 16, "sliding_window": 8},
    "deepseek_v3": dict(hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=3,
                        num_attention_heads=4, num_key_value_heads=4, n_shared_experts=1, n_routed_experts=8,
                        num_experts_per_tok=2, first_k_dense_replace=1, q_lora_rank=32, kv_lora_rank=16,
                        qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, vocab_size=256, n_group=2,
                        topk_group=1),
}


@pytest.mark.parametrize("model_type", sorted(CASES))
def test_kv_cache_bytes_match_a_real_cache(model_type: str) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.AutoConfig.for_model(model_type, **CASES[model_type])
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).to(torch.bfloat16)
    seq = 32
    out = model(torch.randint(0, 256, (1, seq)), use_cache=True)
    cache = out.past_key_values
    real = sum(layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
               for layer in cache.layers)
    arch = architecture_from_hf_config(config.to_dict())
    assert kv_cache_bytes_per_token(arch, seq) * seq == real


def test_gqa_and_mla_shrink_the_cache() -> None:
    per_token = {name: kv_cache_bytes_per_token(models()[name].architecture, 4096)
                 for name in ("llama-2-70b", "llama-65b", "deepseek-v3")}
    assert per_token["llama-2-70b"] == 80 * 2 * 8 * 128 * 2  # 8 KV heads of 128, K and V, bf16
    assert per_token["llama-65b"] == 8 * per_token["llama-2-70b"]  # 64 heads without GQA
    assert per_token["deepseek-v3"] == 61 * (512 + 64) * 2  # latent + rope key


def test_more_traffic_needs_more_gpus_and_latency_targets_cut_the_batch() -> None:
    arch, gpu = models()["llama-3.1-8b"].architecture, find_gpu("H100 SXM")
    low = estimate_serving(arch, gpu, requests_per_day=1e4, prompt_tokens=500, output_tokens=200)
    high = estimate_serving(arch, gpu, requests_per_day=1e8, prompt_tokens=500, output_tokens=200)
    assert high.gpus > low.gpus and high.usd_per_1m_tokens < low.usd_per_1m_tokens
    fast = estimate_serving(arch, gpu, requests_per_day=1e6, prompt_tokens=500, output_tokens=200,
                            latency_p95_ms=3000)
    assert fast.latency_ms <= 3000 and fast.batch < high.batch
    # decode is bandwidth-bound: one sequence cannot beat weights / bandwidth
    single = estimate_serving(arch, gpu, requests_per_day=1e3, prompt_tokens=500, output_tokens=200,
                              latency_p95_ms=1e9, tensor_parallel=1)
    assert single.decode_tokens_per_s_per_sequence < gpu.bandwidth_gb_s * 1e9 / (arch.params_total * 2)


def test_api_comparison_and_errors() -> None:
    arch, gpu = models()["llama-3.1-70b"].architecture, find_gpu("A100 80GB")
    est = estimate_serving(arch, gpu, requests_per_day=1e5, prompt_tokens=500, output_tokens=200,
                           api_usd_per_request=0.001, api_model="x")
    assert est.tensor_parallel >= 2 and est.api is not None and est.api["usd_per_month"] > 0
    with pytest.raises(UserError, match="does not fit"):
        estimate_serving(models()["llama-3.1-405b"].architecture, find_gpu("T4"), requests_per_day=1,
                         prompt_tokens=10, output_tokens=10, tensor_parallel=1)
    with pytest.raises(UserError, match="unknown serving assumption"):
        estimate_serving(arch, gpu, requests_per_day=1, prompt_tokens=1, output_tokens=1, bogus=1.0)


def test_serving_estimate_against_published_measurements() -> None:
    from truecost.estimate.serving_validation import serving_measurements, validate

    rows = serving_measurements()
    assert len(rows) >= 15 and all(r.url.startswith("https://") and r.source_date for r in rows)
    result = validate()
    for r in result["rows"]:
        print(f"{r['model']:12s} {r['gpu']:10s} tp{r['tp']} bs{r['batch']:5d} {r['prompt']}/{r['output']} "
              f"{r['metric']:28s} measured {r['measured']:8.0f} predicted {r['predicted']:8.0f} {r['error']:+.0%}")
    print(f"n={result['n']} median |error| {result['median_abs_error']:.1%} {result['median_abs_error_by_metric']}")
    assert result["median_abs_error"] <= 0.30
    assert result["median_abs_error_by_metric"]["output_tokens_per_s_per_gpu"] <= 0.15


def test_capacity_says_how_many_replicas_and_why() -> None:
    arch, gpu = models()["llama-3.1-70b"].architecture, find_gpu("H100 SXM")
    est = estimate_serving(arch, gpu, requests_per_day=1e5, prompt_tokens=500, output_tokens=200)
    cap = est.capacity
    assert cap["average_rps"] == pytest.approx(1e5 / 86400)
    assert cap["peak_rps"] == pytest.approx(2 * 1e5 / 86400)
    assert est.replicas == cap["replicas_for_peak"] + 1 and "redundant" in cap["why"]
    alone = estimate_serving(arch, gpu, requests_per_day=1e5, prompt_tokens=500, output_tokens=200,
                             redundant_replicas=0, peak_to_average=1.0)
    assert alone.replicas == max(1, -(-cap["average_rps"] // cap["replica_rps"]))
