"""Memory per GPU: weights, gradients and Adam states against what a real tiny model allocates on CPU, LoRA
adapter counts against peft, and the published QLoRA result (65B fine-tuned on one 48 GB GPU)."""

from __future__ import annotations

from typing import Any

import pytest

from truecost.estimate import TrainingSpec, architecture_from_hf_config, estimate_training
from truecost.estimate.catalogue import models
from truecost.estimate.memory import GIB, training_memory

TINY_LLAMA = dict(model_type="llama", hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, vocab_size=256, tie_word_embeddings=False)


def _tiny(config: dict[str, Any]) -> Any:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = dict(config)
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(cfg.pop("model_type"),
                                                                                           **cfg))


def _bytes(tensors: Any) -> int:
    """Bytes of distinct storages (tied weights counted once)."""
    seen: dict[int, int] = {}
    for t in tensors:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def _one_adam_step(model: Any) -> Any:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, foreach=False)
    ids = torch.randint(0, 256, (2, 16))
    model(ids, labels=ids).loss.backward()
    optimizer.step()
    return optimizer


@pytest.mark.parametrize("tied", [False, True])
def test_full_training_memory_matches_real_allocations(tied: bool) -> None:
    config = {**TINY_LLAMA, "tie_word_embeddings": tied}
    model = _tiny(config)
    optimizer = _one_adam_step(model)
    weights = _bytes(model.parameters())
    grads = _bytes(p.grad for p in model.parameters() if p.grad is not None)
    states = _bytes(t for s in optimizer.state.values() for k, t in s.items() if k in ("exp_avg", "exp_avg_sq"))
    arch = architecture_from_hf_config(config)
    mem = training_memory(arch, method="full", precision="fp32", micro_batch=2, seq_len=16, dp=1, zero=0, tp=1,
                          pp=1, recompute="none")
    assert mem.weights * GIB == pytest.approx(weights, rel=1e-9)
    assert mem.gradients * GIB == pytest.approx(grads, rel=1e-9)
    assert mem.optimizer * GIB == pytest.approx(states, rel=1e-9)


def test_lora_adapters_match_peft_and_their_memory() -> None:
    peft = pytest.importorskip("peft")
    model = _tiny(TINY_LLAMA)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets))
    trainable, _ = model.get_nb_trainable_parameters()
    arch = architecture_from_hf_config(TINY_LLAMA)
    assert arch.lora_params(4) == trainable
    optimizer = _one_adam_step(model)
    grads = _bytes(p.grad for p in model.parameters() if p.grad is not None)
    states = _bytes(t for s in optimizer.state.values() for k, t in s.items() if k in ("exp_avg", "exp_avg_sq"))
    mem = training_memory(arch, method="lora", precision="fp32", micro_batch=2, seq_len=16, dp=1, zero=0, tp=1,
                          pp=1, recompute="none", lora_rank=4)
    assert mem.gradients * GIB == pytest.approx(grads, rel=1e-9)
    assert mem.optimizer * GIB == pytest.approx(states, rel=1e-9)
    assert mem.weights * GIB == pytest.approx(_bytes(model.parameters()), rel=1e-9)


def test_qlora_65b_fits_one_48gb_gpu_as_published() -> None:
    """Dettmers et al. 2023: Guanaco-65B (r=64 on all linear layers) fine-tuned on a single 48 GB GPU."""
    spec = TrainingSpec(model="llama-65b", tokens=1e6, gpu="L40S", gpus=1, method="qlora", lora_rank=64,
                        seq_len=512, micro_batch=1, recompute="full", device_memory_gib=48)
    est = estimate_training(spec, with_levers=False)
    assert est.fits_in_memory
    assert 30 < est.memory.weights < 36  # 4-bit base ~0.52 bytes/param
    full = estimate_training(spec.model_copy(update={"method": "full"}), with_levers=False)
    lora = estimate_training(spec.model_copy(update={"method": "lora"}), with_levers=False)
    assert not full.fits_in_memory and not lora.fits_in_memory  # 16-bit weights alone are 121 GiB


def test_zero_stages_shard_over_data_parallel_group() -> None:
    arch = models()["llama-2-7b"].architecture
    kw: dict[str, Any] = dict(method="full", precision="bf16", micro_batch=1, seq_len=4096, tp=1, pp=1,
                              recompute="selective")
    z = [training_memory(arch, dp=8, zero=stage, **kw) for stage in range(4)]
    assert z[1].optimizer == pytest.approx(z[0].optimizer / 8)
    assert z[2].gradients == pytest.approx(z[0].gradients / 8) and z[1].gradients == z[0].gradients
    assert z[3].weights == pytest.approx(z[0].weights / 8)
    # ZeRO paper: mixed-precision Adam needs 16 bytes per parameter unsharded
    assert (z[0].weights + z[0].gradients + z[0].optimizer) * GIB == pytest.approx(16 * arch.params_total)


def test_recompute_and_tensor_parallel_shrink_activations() -> None:
    arch = models()["llama-2-70b"].architecture
    kw: dict[str, Any] = dict(method="full", precision="bf16", micro_batch=1, seq_len=4096, dp=8, zero=3, pp=1,
                              flash_attention=False)
    none, selective, full = (training_memory(arch, tp=1, recompute=r, **kw) for r in ("none", "selective", "full"))
    assert none.activations > selective.activations > full.activations
    assert training_memory(arch, tp=8, recompute="selective", **kw).activations == \
        pytest.approx(selective.activations / 8)


def test_70b_full_training_does_not_fit_one_gpu() -> None:
    est = estimate_training(TrainingSpec(model="llama-2-70b", tokens=1e9, gpu="H100", gpus=1), with_levers=False)
    assert not est.fits_in_memory and est.memory.total > 1000


ACTIVATION_CASES = [
    ("llama", {}, "eager"), ("llama", {}, "sdpa"), ("qwen2", {}, "sdpa"),
    ("mixtral", {"num_local_experts": 4, "num_experts_per_tok": 2}, "sdpa"),
]


@pytest.mark.parametrize("model_type, extra, attention", ACTIVATION_CASES)
def test_activation_memory_matches_the_tensors_autograd_saves(model_type: str, extra: dict[str, Any],
                                                              attention: str) -> None:
    """Every tensor a real bf16 model saves for backward (hooked, parameters excluded) vs the per-layer count."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from truecost.estimate.memory import activation_bytes_per_token_per_layer

    cfg = dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=8,
               num_key_value_heads=2, vocab_size=512, tie_word_embeddings=False, **extra)
    config = transformers.AutoConfig.for_model(model_type, **cfg)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation=attention,
                                                          experts_implementation="eager").to(torch.bfloat16)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: Any) -> Any:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    batch, seq = 2, 128
    ids = torch.randint(0, 512, (batch, seq))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(ids, labels=ids)
    arch = architecture_from_hf_config(config.to_dict())
    per_layer = activation_bytes_per_token_per_layer(arch, seq, "none", flash_attention=attention != "eager")
    # plus the final RMSNorm (fp32 input + bf16 output) and the fp32 log-softmax of the logits
    ours = (per_layer * arch.num_layers + 6 * arch.hidden_size + 4 * arch.vocab_size) * batch * seq
    assert ours == pytest.approx(sum(saved.values()), rel=0.08)
