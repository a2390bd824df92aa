"""Memory per GPU for training: weights, gradients, optimizer states, activations and the rest.

Bytes per parameter follow the ZeRO paper (Rajbhandari et al. 2020): mixed precision keeps 16-bit weights and
gradients plus an fp32 master copy and two fp32 Adam moments (4+4+4 bytes), each shardable over the
data-parallel group. Activations are counted per saved tensor, with the recompute policies of Korthikanti et al.
2022 ("Reducing Activation Recomputation in Large Transformer Models").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from truecost.estimate.architecture import Architecture

GIB = 1024.0**3
Method = Literal["full", "lora", "qlora"]
Recompute = Literal["none", "selective", "full"]

# NF4 with double quantisation: 4 bits + 0.127 bits of quantisation constants per weight (QLoRA paper, Sec. 3).
QLORA_BYTES_PER_PARAM = (4.0 + 0.127) / 8.0
# CUDA context, cuBLAS/NCCL workspaces: ~0.5-1 GiB measured on A100/H100 with PyTorch 2.x.
CUDA_CONTEXT_GIB = 0.75
# Caching-allocator fragmentation on top of live tensors (PyTorch issue threads report 5-15%).
FRAGMENTATION = 0.05


@dataclass(frozen=True)
class MemoryBreakdown:
    """GiB per GPU, by what holds the memory."""

    weights: float
    gradients: float
    optimizer: float
    activations: float
    other: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.other

    def to_dict(self) -> dict[str, float]:
        data = asdict(self)
        data["total"] = self.total
        return {k: round(v, 6) for k, v in data.items()}


_RMS_NORM_FAMILIES = ("llama", "mistral", "mixtral", "qwen2", "gemma2", "phi3", "deepseek_v2", "deepseek_v3",
                      "approximate")
_ROTARY_FAMILIES = _RMS_NORM_FAMILIES + ("olmo", "phi")


def activation_bytes_per_token_per_layer(arch: Architecture, seq_len: int, recompute: Recompute,
                                         flash_attention: bool = True, bytes_per_value: float = 2.0) -> float:
    """Bytes autograd keeps for the backward pass, per token per layer (before tensor parallelism).

    Counted tensor by tensor as an unfused PyTorch/transformers layer saves them (tests compare with the tensors a
    real tiny model saves): RMSNorm keeps its fp32 upcast input and 16-bit output; rotary embedding keeps q and k
    before rotation and their rotated halves; a gated MLP keeps gate, up, activation and product.
    """
    b = bytes_per_value
    h = arch.hidden_size
    if recompute == "full":
        return b * h  # only the layer input is checkpointed
    q = arch.num_heads * arch.head_dim
    v_out = arch.num_heads * arch.v_head_dim
    if arch.model_type.startswith("deepseek"):
        k, v = q, v_out  # MLA materialises full per-head keys and values for attention
    else:
        k = v = arch.kv_dim_per_layer // 2
    rms = arch.model_type in _RMS_NORM_FAMILIES
    norms = {"gemma2": 4, "phi": 1}.get(arch.model_type, 2)
    norm_bytes = (2 * b + b) * h if rms else 2 * b * h  # (fp32 input + output) or (input + output)
    copies = 3 if arch.model_type in _ROTARY_FAMILIES else 1  # q/k, their rotated halves, the rotated q/k
    attention = b * (copies * (q + k) + v + 2 * v_out)  # + attention output and its reshaped copy for o_proj
    if not flash_attention and recompute == "none":
        attention += (4 + b) * arch.num_heads * seq_len  # fp32 softmax and its 16-bit cast, one row per token
    inter = arch.intermediate_size
    routing = 0.0
    if arch.num_experts and arch.experts_per_token and arch.model_type == "mixtral":
        inter *= arch.experts_per_token  # each token runs through top-k experts
        # per expert visit: the gathered input and the output before router weighting; fp32 router softmax
        routing = arch.experts_per_token * 2 * b * h + 4 * arch.num_experts
    mlp = b * (4 * inter if arch.gated_mlp else 2 * inter) + routing
    return norms * norm_bytes + attention + mlp


def training_memory(arch: Architecture, *, method: Method, precision: str, micro_batch: int, seq_len: int,
                    dp: int, zero: int, tp: int, pp: int, recompute: Recompute, lora_rank: int = 16,
                    flash_attention: bool = True, context_gib: float = CUDA_CONTEXT_GIB) -> MemoryBreakdown:
    """Memory per GPU of one training step (AdamW) under the given parallelism and recompute policy."""
    model_parallel = tp * pp
    n = arch.params_total / model_parallel
    half = precision not in ("fp32", "tf32")
    weight_bytes = 2.0 if half else 4.0  # fp8 training keeps 16-bit weights and casts per matmul
    if method == "full":
        trainable = n
        weights = n * weight_bytes
        grads = n * weight_bytes
        optimizer = n * (12.0 if half else 8.0)  # fp32 master + m + v, or just m + v in fp32
    else:
        trainable = arch.lora_params(lora_rank) / model_parallel
        if method == "qlora":
            # Embeddings and the output head stay 16-bit; every other linear weight is 4-bit NF4.
            head = (arch.params_embedding + (0 if arch.tied_embeddings else arch.hidden_size * arch.vocab_size)
                    ) / model_parallel
            weights = (n - head) * QLORA_BYTES_PER_PARAM + head * 2.0
        else:
            weights = n * weight_bytes
        # Adapters: peft keeps LoRA weights in fp32 (no separate master copy); the QLoRA recipe (Dettmers et al.
        # 2023) casts them to 16-bit. Either way the two Adam moments are fp32.
        adapter_bytes = weight_bytes if method == "qlora" else 4.0
        weights += trainable * adapter_bytes
        grads = trainable * adapter_bytes
        optimizer = trainable * 8.0
    if zero >= 1:
        optimizer /= dp
    if zero >= 2:
        grads /= dp
    if zero >= 3:
        weights /= dp
    layers_here = arch.num_layers / pp
    # Pipeline stage 0 holds activations for up to `pp` micro-batches in flight (1F1B schedule).
    in_flight = pp
    tokens = micro_batch * seq_len
    per_layer = activation_bytes_per_token_per_layer(arch, seq_len, recompute, flash_attention)
    activations = tokens * per_layer / tp * layers_here * in_flight
    if recompute == "full":
        # one layer is rebuilt at a time during backward
        activations += tokens * activation_bytes_per_token_per_layer(arch, seq_len, "none", flash_attention) / tp
    # Logits in 16-bit, their fp32 upcast for the loss and its gradient.
    logits = tokens * arch.vocab_size * (2.0 + 4.0 + 4.0) / tp
    live = weights + grads + optimizer + activations + logits
    other = logits + FRAGMENTATION * live + context_gib * GIB
    return MemoryBreakdown(weights=weights / GIB, gradients=grads / GIB, optimizer=optimizer / GIB,
                           activations=activations / GIB, other=other / GIB)
