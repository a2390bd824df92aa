"""One review's connection to its target: every call goes through here, so the budget, the progress bar and the
bill see all of them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from truecost.estimate import ComputePrices, compute_cost_usd, token_price_usd
from truecost.review.targets import Generation, Message, Target, TokenLogprob

if TYPE_CHECKING:
    from truecost.config import Config

T = TypeVar("T")
R = TypeVar("R")
ProgressHook = Callable[[int, int, str], None]  # (done, total, label)
LETTERS = "ABCDEFGHIJ"
BATCH = 8  # items per batched request to a local model: enough to amortise Python overhead, small for memory
# Log-probability requests handed to a local target at once: it sorts them by length and packs them into passes of
# BATCH rows (truecost.review.packing), so more per call means less padding; the budget is checked per call.
REQUESTS_PER_CALL = 8 * BATCH


def batched(items: list[T], size: int = BATCH) -> list[list[T]]:
    """Items in chunks of `size`, for batched requests."""
    return [items[i:i + size] for i in range(0, len(items), size)]


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
    judge_requests: int = 0  # requests to the judge model (their tokens and dollars are in the totals above)


@dataclass
class Session:
    """Target + budget + progress for one review run."""

    target: Target
    budget: Budget = field(default_factory=Budget)
    prices: ComputePrices = field(default_factory=ComputePrices)
    config: Config | None = None
    max_new_tokens: int = 64
    progress: ProgressHook | None = None
    spend: Spend = field(default_factory=Spend)
    stop_reason: str | None = None
    total_items: int = 0
    done_items: int = 0
    judge: Target | None = None  # the model that answers yes/no questions about answers (see review.judge)
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
    def _bill(self, target: Target, generation: Generation) -> None:
        s = self.spend
        s.prompt_tokens += generation.prompt_tokens
        s.completion_tokens += generation.completion_tokens
        s.gpu_seconds += generation.gpu_seconds
        if target.kind == "api":
            price = token_price_usd(target.model_name, generation.prompt_tokens, generation.completion_tokens,
                                    self.config)
            if price is None:
                s.unpriced_requests += 1
            else:
                s.api_usd += price

    def generate(self, messages: list[Message], max_new_tokens: int | None = None) -> Generation:
        """One chat request, counted against the budget."""
        self._check()
        generation = self.target.generate(messages, max_new_tokens or self.max_new_tokens)
        self.spend.requests += 1
        self._bill(self.target, generation)
        return generation

    def generate_many(self, conversations: list[list[Message]], max_new_tokens: int | None = None
                      ) -> list[Generation]:
        """Several chat requests in one batch when the target can batch them (each counted against the budget)."""
        self._check()
        if self.budget.max_requests is not None and len(conversations) > self.budget.max_requests - self.spend.requests:
            conversations = conversations[: self.budget.max_requests - self.spend.requests]
            self.stop_reason = f"max_requests={self.budget.max_requests} reached"
        batch = getattr(self.target, "generate_batch", None)
        tokens = max_new_tokens or self.max_new_tokens
        out = batch(conversations, tokens) if batch else [self.target.generate(c, tokens) for c in conversations]
        for generation in out:
            self.spend.requests += 1
            self._bill(self.target, generation)
        return out

    def ask_judge(self, prompt: str) -> str:
        """One question to the judge model; its cost is part of this review's bill (and of --max-usd)."""
        if self.judge is None:
            raise ValueError("no judge model was given")
        if self.budget.max_usd is not None and self.spent_usd() >= self.budget.max_usd:
            self.stop_reason = f"max_usd={self.budget.max_usd} reached"
            raise BudgetExhausted(self.stop_reason)
        generation = self.judge.generate([{"role": "user", "content": prompt}], 4)
        self.spend.judge_requests += 1
        self._bill(self.judge, generation)
        return generation.text

    def logprobs(self, prefix: str, text: str) -> list[TokenLogprob]:
        """Token log-probabilities of `text` after `prefix`, counted against the budget."""
        return self.logprobs_many([(prefix, text)])[0]

    def logprobs_many(self, requests: list[tuple[str, str]]) -> list[list[TokenLogprob]]:
        """Several (prefix, text) log-probability requests, in one batch when the target batches (each request
        counts against the budget; a batch that would pass --max-requests is cut, then the review stops)."""
        self._check()
        if self.budget.max_requests is not None and len(requests) > self.budget.max_requests - self.spend.requests:
            requests = requests[: self.budget.max_requests - self.spend.requests]
            self.stop_reason = f"max_requests={self.budget.max_requests} reached"
        batch = getattr(self.target, "continuation_logprobs_batch", None)
        out = batch(requests) if batch else [self.target.continuation_logprobs(p, t) for p, t in requests]
        self.spend.requests += len(out)
        for row in out:  # an API bills the tokens it scored as prompt tokens
            self._bill(self.target, Generation(text="", prompt_tokens=len(row), completion_tokens=0, latency_s=0.0))
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
            return self.choose_many([(question, options)])[0][0]
        lettered = "\n".join(f"{LETTERS[i]}. {option}" for i, option in enumerate(options))
        messages: list[Message] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": f"{question}\n{lettered}\nAnswer with the letter of one option."})
        return picked_choice(self.generate(messages, max_new_tokens=16).text, options)

    def choose_many(self, questions: list[tuple[str, list[str]]]) -> list[tuple[int, int]]:
        """(picked option, option tokens scored) per (question, options), by highest log-likelihood of " option"
        after "question\nAnswer:", all in one call so a local target shares each question across its options."""
        requests = [(f"{question}\nAnswer:", " " + option) for question, options in questions for option in options]
        rows = self.logprobs_many(requests)
        if len(rows) < len(requests):
            raise BudgetExhausted(str(self.stop_reason))
        out, k = [], 0
        for _, options in questions:
            mine = rows[k:k + len(options)]
            scores = [sum(v for _, v in row if v is not None) for row in mine]
            out.append((scores.index(max(scores)), sum(len(row) for row in mine)))
            k += len(options)
        return out

    def choose_all(self, questions: list[tuple[str, list[str]]], label: str) -> list[int | None]:
        """`choose` over many (question, options) until the budget runs out: BATCH questions per call by
        log-likelihood when the target gives it, else one lettered answer at a time."""
        if not self.target.has_logprobs():
            return self.map(questions, lambda q: self.choose(*q), label)
        rows = self.map(batched(questions), lambda batch: [pick for pick, _ in self.choose_many(batch)], label,
                        weight=len)
        return [pick for row in rows for pick in row]

    # -- iteration -------------------------------------------------------------------------------------
    def map(self, items: Iterable[T], fn: Callable[[T], R], label: str,
            weight: Callable[[T], int] | None = None) -> list[R]:
        """fn over items until the budget runs out; the progress bar moves `weight(item)` steps per item (1)."""
        out: list[R] = []
        if self.stop_reason:
            return out
        for item in items:
            try:
                out.append(fn(item))
            except BudgetExhausted:
                break
            self.done_items += weight(item) if weight else 1
            if self.progress:
                self.progress(self.done_items, self.total_items, label)
        return out
