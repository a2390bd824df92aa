"""Build the model a config asks for: a local HF folder or an architecture from scratch, full or LoRA/QLoRA."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
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
    if config.model.gguf_file and (_gguf_cache(folder / config.model.gguf_file) / "config.json").is_file():
        folder = _gguf_cache(folder / config.model.gguf_file)
    file = folder / "config.json"
    if file.is_file():
        return dict(json.loads(file.read_text(encoding="utf-8")))
    if config.model.gguf_file:
        return dict(_load_hf_config(config).to_dict())
    raise UserError(f"model.path: {folder} has no config.json")


def _gguf_cache(gguf: Path) -> Path:
    """Where the plain (safetensors) copy of a GGUF model is kept: $TRUECOST_CACHE or ~/.cache/truecost."""
    root = Path(os.environ.get("TRUECOST_CACHE") or Path.home() / ".cache" / "truecost") / "models"
    stat = gguf.stat()
    tag = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return root / f"{gguf.stem}-{tag}"


def model_source(config: TrainConfig) -> tuple[str, str | None]:
    """(folder, gguf_file) to load the model and its tokenizer from. A GGUF model is dequantised once into a
    plain safetensors copy (GGUF-loaded models cannot be saved, and loading GGUF takes about a minute); every
    later load reads that copy."""
    assert config.model.path is not None
    if not config.model.gguf_file:
        return config.model.path, None
    gguf = Path(config.model.path).expanduser() / config.model.gguf_file
    if not gguf.is_file():
        raise UserError(f"model.gguf_file: {gguf} does not exist")
    cache = _gguf_cache(gguf)
    if not (cache / "config.json").is_file():
        _plain_copy(gguf, cache)
    return str(cache), None


def _plain_copy(gguf: Path, target: Path) -> None:
    """Dequantise a GGUF model into an ordinary transformers model and save it (and its tokenizer) at `target`."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    quiet = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the GGUF reader draws its own progress bar on stderr, ours is for progress
    try:
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    finally:
        if quiet is None:
            os.environ.pop("TQDM_DISABLE", None)
    settings = loaded.config
    if hasattr(settings, "quantization_config"):  # the copy holds plain fp32 weights: nothing is quantised
        del settings.quantization_config
    plain = AutoModelForCausalLM.from_config(settings)
    plain.load_state_dict(loaded.state_dict())
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(str(tmp))
    AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(str(tmp))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, target)  # another process may have made the same copy meanwhile: either is fine
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


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
        folder, _ = model_source(config)
        try:
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
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
    model = AutoModelForCausalLM.from_pretrained(model_source(config)[0], quantization_config=quant,
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
