"""A local causal language model as a generator: batched, sampled, metered, stopped by the budget.

GGUF weights (the offline SmolLM2 package) take most of a minute to de-quantise and refuse `save_pretrained`, so
the first use copies them into a plain model saved under `$TRUECOST_CACHE/models` (default
`~/.cache/truecost/models`), keyed like `truecost train`'s copy so the two share it; later loads take seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from truecost.errors import MissingExtra, UserError
from truecost.synth.budget import Budget
from truecost.synth.generators import Completion, ProgressFn, Request, Sampling

BUDGET_STOP = "budget"


def cache_root() -> Path:
    """Where plain copies of GGUF models are kept."""
    return Path(os.environ.get("TRUECOST_CACHE") or Path.home() / ".cache" / "truecost") / "models"


def plain_copy_dir(gguf: Path) -> Path:
    """The cache folder of one GGUF file: its stem and a hash of its path, size and modification time."""
    stat = gguf.stat()
    tag = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_root() / f"{gguf.stem}-{tag}"


def _package_folder(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"no installed package {name!r} holds a model (pip install it, or give a folder)")
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_model(location: str, say: Callable[[str], None] | None = None) -> tuple[Path, str]:
    """(plain model folder, model name) for a folder, a .gguf file or `pkg:NAME`; GGUF is converted once."""
    path = _package_folder(location[4:]) if location.startswith("pkg:") else Path(location).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path, path.name
    gguf = path if path.is_file() and path.suffix == ".gguf" else None
    if gguf is None and path.is_dir():
        gguf = next(iter(sorted(path.glob("*.gguf"))), None)
    if gguf is None:
        raise UserError(f"generator model {location}: neither a model folder (config.json) nor a .gguf file")
    folder = plain_copy_dir(gguf)
    if not (folder / "config.json").is_file():
        if say:
            say(f"converting {gguf.name} to a plain model once (about a minute; cached in {folder})")
        convert_gguf(gguf, folder)
    return folder, gguf.stem


def convert_gguf(gguf: Path, folder: Path) -> None:
    """De-quantise `gguf` into a fresh model of the same config and save it (with its tokenizer) at `folder`,
    written beside it and renamed into place so a killed conversion leaves nothing half-written."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    fresh = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    fresh.save_pretrained(str(tmp))
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(str(tmp))
    try:
        os.replace(tmp, folder)
    except OSError:  # another process finished the same copy first
        shutil.rmtree(tmp, ignore_errors=True)


class LocalGenerator:
    """A causal LM on this machine; prompts of similar length are batched together (left padding)."""

    kind: Literal["local", "api"] = "local"

    def __init__(self, spec: str, location: str, *, sampling: Sampling, batch_size: int = 8,
                 threads: int | None = None, say: Callable[[str], None] | None = None) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingExtra("transformers", "synth", "generating with a local model") from exc
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # stderr carries synth's own progress
        folder, self.model_name = resolve_model(location, say)
        self.spec, self.sampling, self.batch_size = spec, sampling, max(1, batch_size)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(str(folder))
            model: Any = AutoModelForCausalLM.from_pretrained(str(folder))
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"generator {spec!r}: cannot load the model from {folder}: {exc}") from None
        self.model: Any = model.to(self.device).eval()
        config = self.model.config
        self.max_positions = int(getattr(config, "max_position_embeddings", None) or 2048)
        self.gpu_seconds = 0.0

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of a chat prompt, through the model's chat template (plain `Role: text` lines without one)."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            ids: Any = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
                ids = ids["input_ids"]
            return [int(i) for i in ids]
        text = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages) + "\nAssistant:"
        return [int(i) for i in tok(text)["input_ids"]]

    def generate(self, requests: Sequence[Request], budget: Budget, progress: ProgressFn | None = None
                 ) -> list[Completion]:
        prompts = [self.prompt_ids(r.messages) for r in requests]
        out: list[Completion | None] = [None] * len(requests)
        order = sorted(range(len(requests)), key=lambda i: len(prompts[i]))
        done = 0
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            if budget.over_usd():
                break
            reservation = budget.reserve(0.0, len(batch))
            left = budget.requests_left()
            if reservation is None and left:  # the request cap falls inside this batch: send what it allows
                batch = batch[:left]
                reservation = budget.reserve(0.0, len(batch))
            if reservation is None:
                break
            texts = self._generate_batch([prompts[i] for i in batch], max(requests[i].max_new_tokens for i in batch),
                                         budget, seed=self.sampling.seed + start)
            budget.settle(reservation, 0.0)
            for i, (text, n_out) in zip(batch, texts, strict=True):
                stopped = text is None
                out[i] = Completion(requests[i].key, text or "", len(prompts[i]), n_out, attempts=1,
                                    error=BUDGET_STOP if stopped else None)
            done += len(batch)
            if progress:
                progress(done)
        return [c or Completion(r.key, "", error=BUDGET_STOP) for c, r in zip(out, requests, strict=True)]

    def _generate_batch(self, prompts: list[list[int]], max_new_tokens: int, budget: Budget, seed: int
                        ) -> list[tuple[str | None, int]]:
        """(text, completion tokens) per prompt; text None when the budget stopped the batch mid-way."""
        from transformers import StoppingCriteria, StoppingCriteriaList

        torch = self._torch
        keep = max(1, self.max_positions - max_new_tokens)
        prompts = [p[-keep:] for p in prompts]  # the end of a prompt (the instruction) matters most
        eos = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else (eos or 0)
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        stopped = []

        class _Budget(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                if budget.over_usd():
                    stopped.append(True)
                return torch.full((input_ids.shape[0],), bool(stopped), dtype=torch.bool, device=input_ids.device)

        sample = self.sampling.temperature > 0
        torch.manual_seed(seed)
        wall0 = time.perf_counter()
        with torch.no_grad():
            output = self.model.generate(
                ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=sample,
                temperature=self.sampling.temperature if sample else None,
                top_p=self.sampling.top_p if sample else None, top_k=None, pad_token_id=pad,
                stopping_criteria=StoppingCriteriaList([_Budget()]))
        if self.device.startswith("cuda"):
            self.gpu_seconds += time.perf_counter() - wall0
        results: list[tuple[str | None, int]] = []
        for row in output[:, width:].tolist():
            new = row[: row.index(eos) + 1] if eos in row else row
            text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
            results.append((None if stopped else text, len(new)))
        return results

    def close(self) -> None:
        del self.model
