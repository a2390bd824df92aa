"""Exact parameter counts and FLOPs per token from a Hugging Face `config.json`.

Each supported `model_type` maps to a small counting function that walks the layers the way the
`transformers` implementation builds them (biases, norms, tied heads, GQA, gated MLPs, MoE with shared experts,
MLA). Anything else raises a UserError naming the supported types, because a wrong count is worse than none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from truecost.errors import UserError


@dataclass(frozen=True)
class Architecture:
    """The shape of a decoder-only transformer, reduced to what cost and memory need."""

    name: str
    model_type: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int  # query/key width per head (MLA: nope + rope part)
    v_head_dim: int
    vocab_size: int
    intermediate_size: int  # widest MLP hidden size in a layer (dense layers)
    gated_mlp: bool
    tied_embeddings: bool
    params_total: int
    params_active: int  # parameters touched per token (MoE: shared + top-k experts)
    params_embedding: int  # input lookup tables (token, position): no matmul, so no FLOPs
    matmul_params_active: int  # weights of the matmuls each token goes through (lm_head included)
    kv_dim_per_layer: int  # numbers cached per token per layer (K + V; MLA: latent + rope key)
    num_experts: int = 0
    experts_per_token: int = 0
    sliding_window: int | None = None
    sliding_window_layers: int = 0  # how many layers use the window (Gemma 2 alternates)
    max_position_embeddings: int | None = None
    lora_target_shapes: tuple[tuple[int, int], ...] = field(default=(), repr=False)  # (in, out) per layer

    def attention_flops_per_token(self, seq_len: int, causal: bool = False) -> float:
        """Forward FLOPs of QK^T and attention-times-V per token, summed over layers.

        `causal=False` counts the full score matrix, as dense kernels and the usual MFU convention do.
        """
        total = 0.0
        for windowed in (True, False):
            layers = self.sliding_window_layers if windowed else self.num_layers - self.sliding_window_layers
            context = float(min(seq_len, self.sliding_window) if windowed and self.sliding_window else seq_len)
            if causal:
                context = (context + 1) / 2
            total += layers * 2.0 * context * self.num_heads * (self.head_dim + self.v_head_dim)
        return total

    def forward_flops_per_token(self, seq_len: int, causal: bool = False) -> float:
        """Forward FLOPs per token: 2 per matmul weight touched, plus attention scores."""
        return 2.0 * self.matmul_params_active + self.attention_flops_per_token(seq_len, causal)

    def training_flops_per_token(self, seq_len: int, causal: bool = False) -> float:
        """Forward + backward (2x forward) FLOPs per token, without recomputation."""
        return 3.0 * self.forward_flops_per_token(seq_len, causal)

    def lora_params(self, rank: int) -> int:
        """Adapter parameters of LoRA with `rank` on every linear layer of attention and MLP."""
        return self.num_layers * sum(rank * (d_in + d_out) for d_in, d_out in self.lora_target_shapes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("lora_target_shapes")
        return data


@dataclass
class _Count:
    """Running tally while walking a config."""

    total: int = 0
    active: int = 0
    embedding: int = 0
    matmul_active: int = 0

    def matmul(self, d_in: int, d_out: int, bias: bool = False, times: int = 1, active_times: int | None = None
               ) -> None:
        n = d_in * d_out + (d_out if bias else 0)
        active = times if active_times is None else active_times
        self.total += n * times
        self.active += n * active
        self.matmul_active += d_in * d_out * active

    def vector(self, n: int, times: int = 1) -> None:
        self.total += n * times
        self.active += n * times

    def lookup(self, rows: int, width: int) -> None:
        self.total += rows * width
        self.active += rows * width
        self.embedding += rows * width


def _get(cfg: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        value = cfg.get(key)
        if value is not None:
            # Every count read here is a size: a string, zero or negative one would crash or price negative params.
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise UserError(f"model config {key} must be a positive number, got {value!r}")
            return value
    if default is not None:
        return default
    raise UserError(f"model config lacks {' / '.join(keys)}; cannot count its parameters")


def _lm_head(c: _Count, cfg: dict[str, Any], hidden: int, vocab: int, tied_default: bool, bias: bool = False
             ) -> bool:
    tied = bool(cfg.get("tie_word_embeddings", tied_default))
    if tied:
        c.matmul_active += hidden * vocab  # the tied head is still a matmul per token
        if bias:
            c.vector(vocab)
    else:
        c.matmul(hidden, vocab, bias=bias)
    return tied


def _llama_like(cfg: dict[str, Any], name: str) -> Architecture:
    """Llama, Mistral, Mixtral, Qwen2, Gemma 2, Phi-3, OLMo: RMSNorm/LayerNorm, GQA, gated SiLU/GELU MLP."""
    mt = cfg["model_type"]
    h = _get(cfg, "hidden_size")
    layers = _get(cfg, "num_hidden_layers")
    heads = _get(cfg, "num_attention_heads")
    kv = _get(cfg, "num_key_value_heads", default=heads)
    hd = _get(cfg, "head_dim", default=h // heads)
    inter = _get(cfg, "intermediate_size")
    vocab = _get(cfg, "vocab_size")
    qkv_bias = bool(cfg.get("attention_bias", False)) or mt == "qwen2"
    mlp_bias = bool(cfg.get("mlp_bias", False))
    experts = int(cfg.get("num_local_experts") or 0)
    top_k = int(cfg.get("num_experts_per_tok") or 0)
    c = _Count()
    c.lookup(vocab, h)
    # q, k, v (Qwen2 biases only these) and o
    c.matmul(h, heads * hd, bias=qkv_bias, times=layers)
    c.matmul(h, kv * hd, bias=qkv_bias, times=layers * 2)
    c.matmul(heads * hd, h, bias=qkv_bias and mt != "qwen2", times=layers)
    if experts:
        c.matmul(h, experts, times=layers)  # router
        c.matmul(h, inter, bias=mlp_bias, times=layers * experts * 2, active_times=layers * top_k * 2)
        c.matmul(inter, h, bias=mlp_bias, times=layers * experts, active_times=layers * top_k)
    else:
        c.matmul(h, inter, bias=mlp_bias, times=layers * 2)
        c.matmul(inter, h, bias=mlp_bias, times=layers)
    norms_per_layer = {"gemma2": 4, "olmo": 0}.get(mt, 2)
    if mt != "olmo":  # OLMo-1 uses non-parametric LayerNorm
        c.vector(h, times=layers * norms_per_layer + 1)
    tied = _lm_head(c, cfg, h, vocab, tied_default=mt == "gemma2")
    window = cfg.get("sliding_window") if cfg.get("use_sliding_window", True) else None
    window_layers = 0
    if window:
        window_layers = layers // 2 if mt == "gemma2" else layers
    shapes = ((h, heads * hd), (h, kv * hd), (h, kv * hd), (heads * hd, h), (h, inter), (h, inter), (inter, h))
    return Architecture(
        name=name, model_type=mt, hidden_size=h, num_layers=layers, num_heads=heads, num_kv_heads=kv, head_dim=hd,
        v_head_dim=hd, vocab_size=vocab, intermediate_size=inter, gated_mlp=True, tied_embeddings=tied,
        params_total=c.total, params_active=c.active, params_embedding=c.embedding,
        matmul_params_active=c.matmul_active, kv_dim_per_layer=2 * kv * hd, num_experts=experts,
        experts_per_token=top_k, sliding_window=window, sliding_window_layers=window_layers,
        max_position_embeddings=cfg.get("max_position_embeddings"), lora_target_shapes=shapes)


def _deepseek(cfg: dict[str, Any], name: str) -> Architecture:
    """DeepSeek-V2/V3: multi-head latent attention (MLA) and MoE with shared experts after a few dense layers."""
    h = _get(cfg, "hidden_size")
    layers = _get(cfg, "num_hidden_layers")
    heads = _get(cfg, "num_attention_heads")
    vocab = _get(cfg, "vocab_size")
    q_rank = cfg.get("q_lora_rank")
    kv_rank = _get(cfg, "kv_lora_rank")
    nope, rope, v_dim = _get(cfg, "qk_nope_head_dim"), _get(cfg, "qk_rope_head_dim"), _get(cfg, "v_head_dim")
    dense_inter, moe_inter = _get(cfg, "intermediate_size"), _get(cfg, "moe_intermediate_size")
    routed, shared = _get(cfg, "n_routed_experts"), int(cfg.get("n_shared_experts") or 0)
    top_k = _get(cfg, "num_experts_per_tok")
    dense_layers = min(int(cfg.get("first_k_dense_replace", 0)), layers)
    moe_layers = layers - dense_layers
    c = _Count()
    c.lookup(vocab, h)
    q_width = heads * (nope + rope)
    if q_rank:
        c.matmul(h, q_rank, times=layers)
        c.vector(q_rank, times=layers)  # q_a_layernorm
        c.matmul(q_rank, q_width, times=layers)
    else:
        c.matmul(h, q_width, times=layers)
    c.matmul(h, kv_rank + rope, times=layers)
    c.vector(kv_rank, times=layers)  # kv_a_layernorm
    c.matmul(kv_rank, heads * (nope + v_dim), times=layers)
    c.matmul(heads * v_dim, h, times=layers)
    c.matmul(h, dense_inter, times=dense_layers * 2)
    c.matmul(dense_inter, h, times=dense_layers)
    c.matmul(h, routed, times=moe_layers)  # router
    if cfg.get("topk_method") == "noaux_tc":
        c.vector(routed, times=moe_layers)  # e_score_correction_bias
    c.matmul(h, moe_inter, times=moe_layers * (routed + shared) * 2, active_times=moe_layers * (top_k + shared) * 2)
    c.matmul(moe_inter, h, times=moe_layers * (routed + shared), active_times=moe_layers * (top_k + shared))
    c.vector(h, times=layers * 2 + 1)
    tied = _lm_head(c, cfg, h, vocab, tied_default=False)
    shapes = ((h, q_rank or q_width), (h, kv_rank + rope), (heads * v_dim, h), (h, dense_inter), (h, dense_inter),
              (dense_inter, h))
    return Architecture(
        name=name, model_type=cfg["model_type"], hidden_size=h, num_layers=layers, num_heads=heads,
        num_kv_heads=heads, head_dim=nope + rope, v_head_dim=v_dim, vocab_size=vocab, intermediate_size=dense_inter,
        gated_mlp=True, tied_embeddings=tied, params_total=c.total, params_active=c.active,
        params_embedding=c.embedding, matmul_params_active=c.matmul_active, kv_dim_per_layer=kv_rank + rope,
        num_experts=routed, experts_per_token=top_k, max_position_embeddings=cfg.get("max_position_embeddings"),
        lora_target_shapes=shapes)


def _classic(cfg: dict[str, Any], name: str) -> Architecture:
    """GPT-2/GPT-3, OPT, BLOOM, Phi-1/2, MPT: multi-head attention, 2-matrix GELU/ReLU MLP, LayerNorm."""
    mt = cfg["model_type"]
    h = _get(cfg, "hidden_size", "n_embd", "d_model", "n_embed")
    layers = _get(cfg, "num_hidden_layers", "n_layer", "n_layers")
    heads = _get(cfg, "num_attention_heads", "n_head", "n_heads")
    vocab = _get(cfg, "vocab_size")
    if mt == "opt":
        inter = _get(cfg, "ffn_dim")
    elif mt == "mpt":
        inter = int(_get(cfg, "expansion_ratio", default=4) * h)
    else:
        inter = cfg.get("n_inner") or cfg.get("intermediate_size") or 4 * h
    bias = not (mt == "mpt" and cfg.get("no_bias", True)) and cfg.get("enable_bias", True)
    norm_width = h if mt == "mpt" and cfg.get("no_bias", True) else 2 * h  # LayerNorm weight (+ bias)
    c = _Count()
    proj = cfg.get("word_embed_proj_dim") or h if mt == "opt" else h
    c.lookup(vocab, proj)
    if mt == "opt" and proj != h:
        c.matmul(proj, h)
        c.matmul(h, proj)
    if mt == "gpt2":
        c.lookup(_get(cfg, "n_positions", "max_position_embeddings"), h)
    elif mt == "opt":
        c.lookup(_get(cfg, "max_position_embeddings") + 2, h)  # OPT offsets learned positions by 2
    if mt == "bloom":
        c.vector(norm_width)  # word_embeddings_layernorm
    c.matmul(h, 3 * h, bias=bias, times=layers)
    c.matmul(h, h, bias=bias, times=layers)
    c.matmul(h, inter, bias=bias, times=layers)
    c.matmul(inter, h, bias=bias, times=layers)
    norms_per_layer = 1 if mt == "phi" else 2  # Phi runs attention and MLP in parallel off one LayerNorm
    final_norm = 0 if mt == "opt" and not cfg.get("do_layer_norm_before", True) else 1
    c.vector(norm_width, times=layers * norms_per_layer + final_norm)
    tied = _lm_head(c, cfg, proj if mt == "opt" else h, vocab, tied_default=mt != "phi", bias=mt == "phi")
    hd = h // heads
    shapes = ((h, 3 * h), (h, h), (h, inter), (inter, h))
    return Architecture(
        name=name, model_type=mt, hidden_size=h, num_layers=layers, num_heads=heads, num_kv_heads=heads,
        head_dim=hd, v_head_dim=hd, vocab_size=vocab, intermediate_size=inter, gated_mlp=False, tied_embeddings=tied,
        params_total=c.total, params_active=c.active, params_embedding=c.embedding,
        matmul_params_active=c.matmul_active, kv_dim_per_layer=2 * h,
        max_position_embeddings=cfg.get("max_position_embeddings") or cfg.get("n_positions")
        or cfg.get("max_seq_len"), lora_target_shapes=shapes)


_COUNTERS: dict[str, Callable[[dict[str, Any], str], Architecture]] = {
    **{t: _llama_like for t in ("llama", "mistral", "mixtral", "qwen2", "gemma2", "phi3", "olmo")},
    **{t: _deepseek for t in ("deepseek_v2", "deepseek_v3")},
    **{t: _classic for t in ("gpt2", "opt", "bloom", "phi", "mpt")},
}
SUPPORTED_MODEL_TYPES = tuple(sorted(_COUNTERS))


def architecture_from_hf_config(config: dict[str, Any], name: str | None = None) -> Architecture:
    """Count a model from its Hugging Face config dict (`config.json`, or `PretrainedConfig.to_dict()`)."""
    if not isinstance(config, dict):
        raise UserError(f"a model config is a JSON object, got {type(config).__name__}")
    model_type = config.get("model_type")
    if model_type not in _COUNTERS:
        raise UserError(f"cannot count model_type {model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}")
    if model_type == "phi3" and config.get("num_local_experts"):
        raise UserError("cannot count a Phi-3.5-MoE config (experts); supported dense phi3 only")
    if model_type == "mixtral" and not config.get("num_local_experts"):
        raise UserError("mixtral config lacks num_local_experts; cannot count its experts")
    label = name or config.get("_name_or_path") or model_type
    return _COUNTERS[model_type](config, str(label))


def architecture_from_params(params: float, active_params: float | None = None, vocab_size: int = 32000,
                             name: str = "custom") -> Architecture:
    """An approximate Llama-shaped architecture for a bare parameter count (used for attention FLOPs and memory).

    Width grows as (N)^(1/3) with about 128 channels per layer, the aspect ratio of Llama 1-3 and most open models.
    """
    n = float(params)
    hidden = max(64, int(round((128.0 * n / 12.0) ** (1.0 / 3.0) / 64.0)) * 64)
    layers = max(1, int(round(n / (12.0 * hidden * hidden))))
    heads = max(1, hidden // 128)
    inter = int(8 * hidden / 3)
    active = float(active_params) if active_params else n
    embedding = vocab_size * hidden
    shapes = ((hidden, hidden), (hidden, hidden), (hidden, hidden), (hidden, hidden), (hidden, inter),
              (hidden, inter), (inter, hidden))
    return Architecture(
        name=name, model_type="approximate", hidden_size=hidden, num_layers=layers, num_heads=heads,
        num_kv_heads=heads, head_dim=hidden // heads, v_head_dim=hidden // heads, vocab_size=vocab_size,
        intermediate_size=inter, gated_mlp=True, tied_embeddings=False, params_total=int(n),
        params_active=int(active), params_embedding=min(embedding, int(active) // 4),
        matmul_params_active=int(active) - min(embedding, int(active) // 4), kv_dim_per_layer=2 * hidden,
        num_experts=0 if active >= n else 1, lora_target_shapes=shapes)
