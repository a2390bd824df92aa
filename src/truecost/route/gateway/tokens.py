"""Token counts when an upstream reports none, and the most a request can use (what a budget reserves).

Counts come from the upstream's `usage` whenever it sends one. Otherwise the upstream's own tokenizer counts
them when gateway.yaml names one (`tokenizer: path/to/tokenizer.json`, read offline with `tokenizers`), else
they are estimated at CHARS_PER_TOKEN characters a token and the ledger row says `tokens_estimated`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHARS_PER_TOKEN = 4.0
"""OpenAI's rule of thumb for English text; used only when neither usage nor a tokenizer is at hand."""
TOKENS_PER_MESSAGE = 4
"""Chat-template tokens around each message (role markers, separators): OpenAI documents 3-4 per message."""


def estimate_tokens(chars: int) -> int:
    """Tokens in `chars` characters of text, roughly (see CHARS_PER_TOKEN)."""
    return math.ceil(chars / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Usage:
    """Token counts of one answer, in OpenAI's terms: cached prompt tokens are part of prompt_tokens, reasoning
    tokens part of completion_tokens."""

    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: dict[str, Any]) -> Usage:
        """Read an OpenAI usage object (details included when present)."""
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        return cls(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                   int(prompt_details.get("cached_tokens") or 0), int(completion_details.get("reasoning_tokens") or 0))


class TokenCounter:
    """Counts tokens for one upstream: with its tokenizer when one is configured, else by estimate."""

    def __init__(self, tokenizer: Path | None = None) -> None:
        self._tokenizer: Any = None
        if tokenizer is not None:
            from tokenizers import Tokenizer

            from truecost.errors import UserError

            file = tokenizer / "tokenizer.json" if tokenizer.is_dir() else tokenizer
            try:
                self._tokenizer = Tokenizer.from_file(str(file))
            except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
                raise UserError(f"tokenizer {file}: cannot be read ({exc})") from exc

    @property
    def exact(self) -> bool:
        """Whether counts come from the model's own tokenizer."""
        return self._tokenizer is not None

    def count(self, text: str) -> int:
        """Tokens in `text`."""
        if not text:
            return 0
        if self._tokenizer is not None:
            return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
        return estimate_tokens(len(text))

    def prompt_tokens(self, texts: list[str]) -> int:
        """Tokens of a chat prompt: its messages' text plus the chat template around each."""
        return sum(self.count(t) for t in texts) + TOKENS_PER_MESSAGE * len(texts)

    def prompt_bound(self, texts: list[str]) -> int:
        """At most how many tokens the prompt can be billed as: the tokenizer's count, or without one its UTF-8
        bytes (byte-level BPE never makes more tokens than bytes), plus the chat template."""
        if self._tokenizer is not None:
            return self.prompt_tokens(texts)
        return sum(len(t.encode()) for t in texts) + TOKENS_PER_MESSAGE * len(texts)
