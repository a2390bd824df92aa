"""Parameter counts and FLOPs against independent references: published counts, real `transformers` models
(built on the meta device or tiny on CPU) and a brute-force count of the matmuls they execute."""

from __future__ import annotations

from typing import Any

import pytest

from truecost.errors import UserError
from truecost.estimate import architecture_from_hf_config, architecture_from_params
from truecost.estimate.catalogue import models

CATALOGUE = sorted(models())
REQUIRED_FAMILIES = ("llama-7b", "llama-2-70b", "llama-3-8b", "llama-3.1-405b", "mistral-7b", "mixtral-8x7b",
                     "qwen2.5-7b", "gemma-2-9b", "deepseek-v3", "phi-2", "phi-3-mini", "olmo-7b", "bloom-176b",
                     "opt-175b", "gpt3-175b")


def test_catalogue_covers_the_required_families() -> None:
    assert set(REQUIRED_FAMILIES) <= set(CATALOGUE)


@pytest.mark.parametrize("name", CATALOGUE)
def test_parameter_count_within_1_percent_of_published(name: str) -> None:
    model = models()[name]
    arch = model.architecture
    assert abs(arch.params_total / model.published_params - 1) < 0.01, (arch.params_total, model.published_params)
    if model.published_active_params:
        # published active counts are rounded to two significant digits (e.g. DeepSeek-V3 "37B")
        assert abs(arch.params_active / model.published_active_params - 1) < 0.025


def _hf_model(config: dict[str, Any], device: str = "meta", **kwargs: Any) -> Any:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = dict(config)
    hf_config = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    with torch.device(device):
        return transformers.AutoModelForCausalLM.from_config(hf_config, **kwargs)


@pytest.mark.parametrize("name", CATALOGUE)
def test_parameter_count_equals_transformers_exactly(name: str) -> None:
    """Build the real model on the meta device (no memory) and count its tensors."""
    model = _hf_model(models()[name].config)
    counted = sum(p.numel() for p in model.parameters())
    # DeepSeek-V3's router bias is a checkpoint weight that transformers registers as a buffer.
    counted += sum(b.numel() for n, b in model.named_buffers() if n.endswith("e_score_correction_bias"))
    assert models()[name].architecture.params_total == counted


TINY: dict[str, dict[str, Any]] = {
    "llama": dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=256, tie_word_embeddings=False),
    "gpt2": dict(n_embd=64, n_layer=2, n_head=4, vocab_size=256, n_positions=128, bos_token_id=0, eos_token_id=0),
    "qwen2": dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=256),
    "mixtral": dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, vocab_size=256, num_local_experts=4, num_experts_per_tok=2),
    "deepseek_v3": dict(hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=3,
                        num_attention_heads=4, num_key_value_heads=4, n_shared_experts=1, n_routed_experts=8,
                        num_experts_per_tok=2, first_k_dense_replace=1, q_lora_rank=32, kv_lora_rank=16,
                        qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, vocab_size=256, n_group=2,
                        topk_group=1),
    "gemma2": dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=32, vocab_size=256, sliding_window=64),
    "opt": dict(hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4, vocab_size=256,
                max_position_embeddings=64, word_embed_proj_dim=32),
}


@pytest.mark.parametrize("model_type", sorted(TINY))
def test_flops_equal_a_brute_force_count_of_the_matmuls(model_type: str) -> None:
    """FlopCounterMode counts every matmul a real tiny model runs (forward, then forward + backward)."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = _hf_model({"model_type": model_type, **TINY[model_type]}, device="cpu", attn_implementation="eager",
                      experts_implementation="eager")
    arch = architecture_from_hf_config(model.config.to_dict())
    assert arch.params_total == sum(p.numel() for p in model.parameters())
    batch, seq = 2, 16
    ids = torch.randint(0, 256, (batch, seq))
    with FlopCounterMode(display=False) as forward:
        model(ids)
    with FlopCounterMode(display=False) as training:
        model(ids, labels=ids).loss.backward()
    tokens = batch * seq
    # eager attention computes the full score matrix, which is what the non-causal count models
    assert arch.forward_flops_per_token(seq) * tokens == pytest.approx(forward.get_total_flops(), rel=1e-9)
    assert arch.training_flops_per_token(seq) * tokens == pytest.approx(training.get_total_flops(), rel=1e-9)


def test_sliding_window_caps_attention_flops() -> None:
    arch = models()["mistral-7b"].architecture
    assert arch.attention_flops_per_token(32768) == arch.attention_flops_per_token(4096)
    gemma = models()["gemma-2-9b"].architecture  # alternates local and global layers
    assert gemma.attention_flops_per_token(4096) < gemma.attention_flops_per_token(8192) < \
        2 * gemma.attention_flops_per_token(4096)


def test_mixtral_active_params_are_two_of_eight_experts() -> None:
    arch = models()["mixtral-8x7b"].architecture
    assert 12.5e9 < arch.params_active < 13.2e9 < arch.params_total


@pytest.mark.parametrize("config, fragment", [
    ({"model_type": "mamba", "hidden_size": 8}, "supported: bloom, deepseek_v2"),
    ({"model_type": "llama", "hidden_size": 8}, "lacks num_hidden_layers"),
    ({}, "cannot count model_type None"),
])
def test_uncountable_configs_fail_clearly(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        architecture_from_hf_config(config)


def test_params_only_architecture_is_llama_shaped() -> None:
    arch = architecture_from_params(7e9)
    assert 3500 < arch.hidden_size < 4700 and 24 <= arch.num_layers <= 40
