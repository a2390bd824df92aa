"""Any OpenAI-compatible endpoint as a generator, through the official `openai` client.

Requests run concurrently (at most `concurrency` in flight). Each attempt reserves its worst-case price in the
budget first; a connection failure, timeout, 429 or 5xx is retried with exponential backoff and jitter (honouring
`Retry-After`); any other answer is final. When no request has succeeded and one runs out of retries, the run
stops with one line naming the endpoint, instead of spending the budget on a server that is not there.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from truecost.errors import MissingExtra, UserError
from truecost.estimate.pricing import TokenPrice, token_cost_usd
from truecost.synth.budget import Budget, Reservation
from truecost.synth.generators import Completion, EndpointOptions, ProgressFn, Request, Sampling

if TYPE_CHECKING:
    from truecost.config import Config

BUDGET_STOP = "budget"
# Chat formatting adds a few tokens per message (role markers) and per reply (priming); 16 is generous.
_TOKENS_PER_MESSAGE = 16


def prompt_tokens_bound(messages: list[dict[str, str]]) -> int:
    """An upper bound on a chat prompt's tokens: byte-level tokenizers spend at least one byte per token."""
    return sum(len(m["content"].encode("utf-8")) + _TOKENS_PER_MESSAGE for m in messages) + _TOKENS_PER_MESSAGE


class _Unreachable(Exception):
    """A request ran out of retries before any request of the run succeeded."""


class EndpointGenerator:
    """Chat completions from `base_url`, priced per token by truecost.estimate (or the given price)."""

    kind: Literal["local", "api"] = "api"
    device = "remote"

    def __init__(self, spec: str, url: str, model: str, *, sampling: Sampling, options: EndpointOptions,
                 config: Config | None = None) -> None:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingExtra("openai", "synth", "generating through an endpoint") from exc
        self._openai = openai
        base = url.rstrip("/")
        self.base_url = base if base.endswith("/v1") or "/v1/" in base else base + "/v1"
        self.spec, self.model_name, self.sampling, self.options = spec, model, sampling, options
        self.price, self.price_basis = endpoint_price(model, options, config)
        self.key = (options.api_key or os.environ.get("TRUECOST_SYNTH_API_KEY") or os.environ.get("OPENAI_API_KEY")
                    or "not-needed")  # local servers ignore the key, but the client insists on one
        self.successes = 0
        self.gpu_seconds = 0.0
        self._rng = random.Random(sampling.seed)

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Dollars of one request at this endpoint's price (0 when no price is known)."""
        return token_cost_usd(self.price, prompt_tokens, completion_tokens) if self.price else 0.0

    def generate(self, requests: Sequence[Request], budget: Budget, progress: ProgressFn | None = None
                 ) -> list[Completion]:
        try:
            return asyncio.run(self._all(requests, budget, progress))
        except _Unreachable as exc:
            raise UserError(f"endpoint {self.base_url} unreachable after {self.options.retries + 1} tries: {exc}"
                            ) from None

    async def _all(self, requests: Sequence[Request], budget: Budget, progress: ProgressFn | None
                   ) -> list[Completion]:
        client = self._openai.AsyncOpenAI(base_url=self.base_url, api_key=self.key, max_retries=0,
                                          timeout=self.options.timeout_s)
        gate = asyncio.Semaphore(max(1, self.options.concurrency))
        done = 0

        async def one(request: Request) -> Completion:
            nonlocal done
            async with gate:
                result = await self._with_retries(client, request, budget)
            done += 1
            if progress:
                progress(done)
            return result

        try:
            tasks = [asyncio.ensure_future(one(r)) for r in requests]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        finally:
            await client.close()

    async def _with_retries(self, client: Any, request: Request, budget: Budget) -> Completion:
        worst = self.cost_usd(prompt_tokens_bound(request.messages), request.max_new_tokens)
        last_error = ""
        for attempt in range(1, self.options.retries + 2):
            reservation = budget.reserve(worst)
            if reservation is None:
                return Completion(request.key, "", attempts=attempt - 1, error=BUDGET_STOP)
            try:
                result = await self._call(client, request, reservation, budget)
            except _Retry as exc:
                last_error = exc.reason
                if attempt > self.options.retries:
                    break
                await asyncio.sleep(self._backoff(attempt, exc.retry_after))
                continue
            result.attempts = attempt
            self.successes += 1
            return result
        if self.successes == 0:
            raise _Unreachable(last_error)
        return Completion(request.key, "", attempts=self.options.retries + 1, error=f"failed: {last_error}")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter (AWS architecture blog, 'Exponential Backoff and Jitter', 2015)."""
        ceiling = min(self.options.max_backoff_s, self.options.backoff_s * 2 ** (attempt - 1))
        wait = self._rng.uniform(0, ceiling)
        return max(wait, min(retry_after, self.options.max_backoff_s)) if retry_after else wait

    async def _call(self, client: Any, request: Request, reservation: Reservation, budget: Budget) -> Completion:
        openai = self._openai
        body: dict[str, Any] = {"model": self.model_name, "messages": request.messages,
                                "max_tokens": request.max_new_tokens, "temperature": self.sampling.temperature}
        if self.sampling.temperature > 0:
            body["top_p"] = self.sampling.top_p
        try:
            response = await client.chat.completions.create(**body)
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            # A timeout may still be billed by the provider: count the reserved worst case, never less.
            budget.settle(reservation, reservation.usd if isinstance(exc, openai.APITimeoutError) else 0.0)
            raise _Retry(f"{type(exc).__name__}: {exc}") from None
        except openai.APIStatusError as exc:
            budget.settle(reservation, 0.0)
            if exc.status_code == 429 or exc.status_code >= 500:
                raise _Retry(f"HTTP {exc.status_code}", _retry_after(exc)) from None
            raise UserError(f"endpoint {self.base_url} refused the request: HTTP {exc.status_code}: "
                            f"{str(exc.message)[:200]}") from None
        return self._completion(request, response, reservation, budget)

    def _completion(self, request: Request, response: Any, reservation: Reservation, budget: Budget) -> Completion:
        try:
            text = response.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError):
            budget.settle(reservation, reservation.usd)
            return Completion(request.key, "", error="answer without choices[0].message.content")
        usage = getattr(response, "usage", None)
        # Servers that omit usage are charged their worst case: the budget must never be under-counted.
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or prompt_tokens_bound(request.messages))
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or request.max_new_tokens)
        usd = self.cost_usd(prompt_tokens, completion_tokens)
        budget.settle(reservation, usd)
        return Completion(request.key, text.strip(), prompt_tokens, completion_tokens, api_usd=usd)

    def close(self) -> None:
        return None


class _Retry(Exception):
    """A failure worth another try, with the server's Retry-After when it gave one."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after(exc: Any) -> float | None:
    try:
        return float(exc.response.headers.get("retry-after"))
    except (AttributeError, TypeError, ValueError):
        return None


def endpoint_price(model: str, options: EndpointOptions, config: Config | None) -> tuple[TokenPrice | None, str]:
    """(price, basis) of `model`: the user's `--price-in/--price-out`, else truecost.estimate's (truecost.toml
    `[estimate.api_prices]`, then the dated catalogue); (None, 'unpriced') when nobody knows it."""
    if options.price_in_usd_per_1m is not None or options.price_out_usd_per_1m is not None:
        price = TokenPrice(options.price_in_usd_per_1m or 0.0, options.price_out_usd_per_1m or 0.0)
        return price, "assumed: given on the command line (--price-in/--price-out)"
    from truecost.estimate.catalogue import api_prices
    from truecost.estimate.costing import model_token_price

    known = model_token_price(model, config)
    if known is None:
        return None, "unpriced: no price known for this model"
    row = api_prices().get(model.lower())
    if row is not None and (row.usd_per_1m_input, row.usd_per_1m_output) == (known.input_usd_per_1m,
                                                                             known.output_usd_per_1m):
        return known, f"sourced: {row.source} ({row.source_date})"
    return known, "assumed: truecost.toml [estimate.api_prices]"
