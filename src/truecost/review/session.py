"""One review's connection to its target: every call goes through here, so the budget, the progress bar and the
bill see all of them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from truecost.estimate import ComputePrices, compute_cost_usd, token_price_usd
from truecost.review.targets import Generation, Message, Target, TokenLogprob

T = TypeVar("T")
R = TypeVar("R")
ProgressHook = Callable[[int, int, str], None]  # (done, total, label)
LETTERS = "ABCDEFGHIJ"


class BudgetExhausted(Exception):
    """The review reached --max-requests or --max-usd; the current item is dropped and the review stops."""


@dataclass
class Budget:
    """Caps on what the review may spend; None means no cap."""

    max_requests: int | None = None
    max_usd: float | None = None


@dataclass
class Spend:
    """What the review has used so far."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    api_usd: float = 0.0
    unpriced_requests: int = 0  # API requests to a model the catalogue has no price for
    gpu_seconds: float = 0.0


@dataclass
class Session:
    """Target + budget + progress for one review run."""

    target: Target
    budget: Budget = field(default_factory=Budget)
    prices: ComputePrices = field(default_factory=ComputePrices)
    config: Any = None
    max_new_tokens: int = 64
    progress: ProgressHook | None = None
    spend: Spend = field(default_factory=Spend)
    stop_reason: str | None = None
    total_items: int = 0
    done_items: int = 0
    _cpu0: float = field(default_factory=time.process_time)

    # -- money -----------------------------------------------------------------------------------------
    def compute_usd(self) -> float:
        """Dollars of this process's CPU time (and GPU time) since the review started, priced by estimate."""
        return compute_cost_usd(time.process_time() - self._cpu0, self.spend.gpu_seconds / 3600.0, self.prices)

    def spent_usd(self) -> float:
        """API dollars plus local compute dollars so far."""
        return self.spend.api_usd + self.compute_usd()

    def request_price_usd(self, generation: Generation) -> float | None:
        """Dollars of one request: per-token price for API models, measured compute for local ones."""
        if self.target.kind == "api":
            return token_price_usd(self.target.model_name, generation.prompt_tokens, generation.completion_tokens,
                                   self.config)
        return compute_cost_usd(generation.cpu_seconds, generation.gpu_seconds / 3600.0, self.prices)

    def _check(self) -> None:
        b = self.budget
        if b.max_requests is not None and self.spend.requests >= b.max_requests:
            self.stop_reason = f"max_requests={b.max_requests} reached"
            raise BudgetExhausted(self.stop_reason)
        if b.max_usd is not None and self.spent_usd() >= b.max_usd:
            self.stop_reason = f"max_usd={b.max_usd} reached"
            raise BudgetExhausted(self.stop_reason)

    # -- calls -----------------------------------------------------------------------------------------
    def generate(self, messages: list[Message], max_new_tokens: int | None = None) -> Generation:
        """One chat request, counted against the budget."""
        self._check()
        generation = self.target.generate(messages, max_new_tokens or self.max_new_tokens)
        s = self.spend
        s.requests += 1
        s.prompt_tokens += generation.prompt_tokens
        s.completion_tokens += generation.completion_tokens
        s.gpu_seconds += generation.gpu_seconds
        if self.target.kind == "api":
            price = self.request_price_usd(generation)
            if price is None:
                s.unpriced_requests += 1
            else:
                s.api_usd += price
        return generation

    def logprobs(self, prefix: str, text: str) -> list[TokenLogprob]:
        """Token log-probabilities of `text` after `prefix`, counted against the budget."""
        self._check()
        out = self.target.continuation_logprobs(prefix, text)
        self.spend.requests += 1
        self.spend.prompt_tokens += len(out)
        return out

    def logprob_sum(self, prefix: str, text: str) -> float:
        """Total log-probability of `text` after `prefix`."""
        return sum(v for _, v in self.logprobs(prefix, text) if v is not None)

    def logprob_mean(self, prefix: str, text: str) -> float:
        """Mean per-token log-probability of `text` after `prefix` (length-normalised)."""
        values = [v for _, v in self.logprobs(prefix, text) if v is not None]
        return sum(values) / len(values) if values else float("-inf")

    def choose(self, question: str, options: list[str], system: str | None = None) -> int | None:
        """Which option the model picks: highest log-likelihood when available, else a lettered answer."""
        from truecost.review.scorers import picked_choice

        if self.target.has_logprobs():
            prefix = f"{question}\nAnswer:"
            scores = [self.logprob_sum(prefix, " " + option) for option in options]
            return max(range(len(options)), key=lambda i: scores[i])
        lettered = "\n".join(f"{LETTERS[i]}. {option}" for i, option in enumerate(options))
        messages: list[Message] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": f"{question}\n{lettered}\nAnswer with the letter of one option."})
        return picked_choice(self.generate(messages, max_new_tokens=16).text, options)

    # -- iteration -------------------------------------------------------------------------------------
    def map(self, items: Iterable[T], fn: Callable[[T], R], label: str) -> list[R]:
        """fn over items until the budget runs out; the progress bar moves one step per item."""
        out: list[R] = []
        if self.stop_reason:
            return out
        for item in items:
            try:
                out.append(fn(item))
            except BudgetExhausted:
                break
            self.done_items += 1
            if self.progress:
                self.progress(self.done_items, self.total_items, label)
        return out
