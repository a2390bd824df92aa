"""Build the model a config asks for: a local HF folder or an architecture from scratch, full or LoRA/QLoRA."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from truecost.errors import MissingExtra, UserError
from truecost.train.config import TrainConfig


@dataclass(frozen=True)
class Precision:
    """How the forward/backward runs: autocast dtype (None: fp32) and whether the loss needs scaling."""

    name: str  # bf16, fp16 or fp32
    autocast_dtype: Any  # torch.dtype or None
    loss_scaling: bool


def pick_device(requested: str) -> str:
    """`cuda` when asked or available (auto), else `cpu`; UserError when cuda is asked but absent."""
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("hardware.device: cuda was requested but no CUDA GPU is visible (allowed: auto, cpu, cuda)")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX), where bf16 beats fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(flag in flags for flag in (" avx512_bf16", " amx_bf16"))


def pick_precision(requested: str, device: str) -> Precision:
    """bf16 where the hardware does it natively, fp16 with loss scaling on older GPUs, fp32 otherwise."""
    import torch

    if requested == "auto":
        if device == "cuda":
            requested = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            requested = "bf16" if cpu_supports_bf16() else "fp32"
    if requested == "bf16":
        return Precision("bf16", torch.bfloat16, False)
    if requested == "fp16":
        if device == "cpu":
            raise UserError("precision: fp16 autocast is for GPUs; on CPU use bf16 or fp32 (allowed: auto, bf16, "
                            "fp16, fp32)")
        return Precision("fp16", torch.float16, True)
    return Precision("fp32", None, False)


def architecture_dict(config: TrainConfig) -> dict[str, Any]:
    """The HF config.json of the model to train (read from the folder, or the config's architecture)."""
    if config.model.path is None:
        return dict(config.model.architecture)
    folder = Path(config.model.path).expanduser()
    if not folder.is_dir():
        raise UserError(f"model.path: {folder} is not a folder (a local Hugging Face model folder, or leave it "
                        "empty to train model.architecture from scratch)")
    file = folder / "config.json"
    if file.is_file():
        return dict(json.loads(file.read_text(encoding="utf-8")))
    if config.model.gguf_file:
        return dict(_load_hf_config(config).to_dict())
    raise UserError(f"model.path: {folder} has no config.json")


def _load_hf_config(config: TrainConfig) -> Any:
    from transformers import AutoConfig

    kwargs = {"gguf_file": config.model.gguf_file} if config.model.gguf_file else {}
    return AutoConfig.from_pretrained(str(config.model.path), **kwargs)


def build_model(config: TrainConfig, vocab_size: int, device: str) -> Any:
    """The model on `device`, fp32 master weights; LoRA/QLoRA adapters applied when the method asks."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(config.seed)
    if config.method == "qlora":
        return _build_qlora(config, device)
    if config.model.path is None:
        arch = dict(config.model.architecture)
        model_type = arch.pop("model_type", "llama")
        arch["vocab_size"] = vocab_size
        try:
            hf_config = AutoConfig.for_model(model_type, **arch)
        except (ValueError, TypeError) as exc:
            raise UserError(f"model.architecture: {str(exc).splitlines()[0]}") from exc
        model = AutoModelForCausalLM.from_config(hf_config)
    else:
        kwargs = {"gguf_file": config.model.gguf_file} if config.model.gguf_file else {}
        try:
            model = AutoModelForCausalLM.from_pretrained(str(config.model.path), dtype=torch.float32, **kwargs)
        except (OSError, ValueError) as exc:
            raise UserError(f"model.path: cannot load {config.model.path} ({str(exc).splitlines()[0]})") from exc
        embeddings: Any = model.get_input_embeddings()
        if int(embeddings.weight.shape[0]) < vocab_size:
            model.resize_token_embeddings(vocab_size)
    model.to(device)
    if config.method == "lora":
        model = apply_lora(model, config)
    return model


def apply_lora(model: Any, config: TrainConfig) -> Any:
    """Wrap `model` with PEFT LoRA adapters; only the adapters train."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora.rank, lora_alpha=int(config.lora.alpha), lora_dropout=config.lora.dropout,
                      target_modules=config.lora.target_modules, task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        raise UserError(f"lora.target_modules: {str(exc).splitlines()[0]}") from exc


def qlora_unavailable_reason(device: str) -> str | None:
    """Why QLoRA cannot run here (None when it can): it needs bitsandbytes and a CUDA GPU."""
    if device != "cuda":
        return "method: qlora needs a CUDA GPU (4-bit bitsandbytes kernels); on this machine use method: lora"
    if importlib.util.find_spec("bitsandbytes") is None:
        return "method: qlora needs bitsandbytes: pip install bitsandbytes (or use method: lora)"
    return None


def _build_qlora(config: TrainConfig, device: str) -> Any:
    reason = qlora_unavailable_reason(device)
    if reason:
        raise UserError(reason)
    if config.model.path is None:
        raise UserError("method: qlora quantises pretrained weights; set model.path (or use method: lora/full)")
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16,
                               bnb_4bit_use_double_quant=True)
    model = AutoModelForCausalLM.from_pretrained(str(config.model.path), quantization_config=quant,
                                                 device_map={"": 0})
    model = prepare_model_for_kbit_training(model)
    return apply_lora(model, config)


def count_parameters(model: Any) -> tuple[int, int]:
    """(all parameters, trainable parameters)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def require_train_extra() -> None:
    """Fail early with the pip line when the training libraries are missing."""
    for module, package in (("torch", "torch"), ("transformers", "transformers"), ("tokenizers", "tokenizers")):
        if importlib.util.find_spec(module) is None:
            raise MissingExtra(package, "train", "training")
