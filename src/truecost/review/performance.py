"""Performance suite: the user's evaluation set scored five ways, plus latency, throughput and cost per 1,000
requests (priced by truecost.estimate: per-token prices for API models, measured compute for local ones)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from truecost.errors import UserError
from truecost.review.files import read_jsonl, validate, where
from truecost.review.results import SuiteResult, make_metric
from truecost.review.scorers import choice_index, score
from truecost.review.session import LETTERS, Session, batched
from truecost.review.targets import Generation, Message


class EvalItem(BaseModel):
    """One line of an evaluation set (JSONL)."""

    model_config = ConfigDict(extra="forbid")
    id: str | int | None = None
    prompt: str = Field(min_length=1)
    expected: str | int | float
    scorer: Literal["exact", "choice", "numeric", "regex", "contains"] = "exact"
    choices: list[str] | None = None
    system: str | None = None
    tolerance: float = Field(default=1e-6, ge=0)

    @model_validator(mode="after")
    def _choices_fit(self) -> EvalItem:
        if self.scorer == "choice":
            if not self.choices or len(self.choices) < 2:
                raise ValueError("scorer 'choice' needs a list of at least two 'choices'")
            choice_index(str(self.expected), self.choices)  # raises when expected is not an option
        return self


def load_eval_set(path: Path | str) -> list[EvalItem]:
    """A JSONL evaluation set: {"prompt", "expected", "scorer"?, "choices"?, "system"?, "tolerance"?} per line."""
    items = [validate(EvalItem, data, path, line) for line, data in read_jsonl(path, "evaluation set")]
    if not items:
        raise UserError(f"{where(path)}: the evaluation set is empty")
    return items


@dataclass
class _Outcome:
    correct: float
    scorer: str
    latency_s: float
    completion_tokens: int
    price_usd: float | None
    response: str
    scored_tokens: int = 0  # option tokens scored, for an item answered by log-likelihood
    by_loglikelihood: bool = False


def _messages(item: EvalItem) -> list[Message]:
    prompt = item.prompt
    if item.scorer == "choice" and item.choices:
        prompt += "\n" + "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(item.choices))
        prompt += "\nAnswer with the letter of one option."
    messages: list[Message] = [{"role": "system", "content": item.system}] if item.system else []
    return messages + [{"role": "user", "content": prompt}]


def _by_logprob(session: Session, item: EvalItem) -> bool:
    """A choice item on a target with log-probabilities is answered by the likeliest option, nothing generated."""
    return item.scorer == "choice" and bool(item.choices) and session.target.has_logprobs()


def _chosen(session: Session, items: list[EvalItem]) -> list[_Outcome]:
    """Choice items by log-likelihood, in one call; the call's wall and CPU time shared out evenly per item."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    picks = session.choose_many([(item.prompt, item.choices or []) for item in items])
    share, on_gpu = 1.0 / len(items), str(getattr(session.target, "device", "")).startswith("cuda")
    latency, cpu = (time.perf_counter() - wall0) * share, (time.process_time() - cpu0) * share
    out = []
    for item, (picked, scored_tokens) in zip(items, picks, strict=True):
        answer = (item.choices or [])[picked]
        # What it used: the option tokens scored (as Session bills a log-probability request), nothing generated.
        used = Generation(text=answer, prompt_tokens=scored_tokens, completion_tokens=0, latency_s=latency,
                          cpu_seconds=cpu, gpu_seconds=latency if on_gpu else 0.0)
        correct = score(item.scorer, answer, str(item.expected), choices=item.choices, picked=picked)
        out.append(_Outcome(correct, item.scorer, latency, 0, session.request_price_usd(used), answer,
                            scored_tokens=scored_tokens, by_loglikelihood=True))
    return out


def _generated(session: Session, items: list[EvalItem]) -> list[_Outcome]:
    """Items answered by generation, in one batch when the target batches."""
    out = []
    for item, generation in zip(items, session.generate_many([_messages(item) for item in items]), strict=False):
        correct = score(item.scorer, generation.text, str(item.expected), choices=item.choices,
                        tolerance=item.tolerance)
        out.append(_Outcome(correct, item.scorer, generation.latency_s, generation.completion_tokens,
                            session.request_price_usd(generation), generation.text))
    return out


def _answer(session: Session, batch: list[EvalItem]) -> list[_Outcome]:
    """One batch of items, in their order: choice items by log-likelihood, the rest generated."""
    chosen = [i for i, item in enumerate(batch) if _by_logprob(session, item)]
    rest = sorted(set(range(len(batch))) - set(chosen))
    outcomes: dict[int, _Outcome] = {}
    if chosen:
        outcomes.update(zip(chosen, _chosen(session, [batch[i] for i in chosen]), strict=True))
    if rest:
        outcomes.update(zip(rest, _generated(session, [batch[i] for i in rest]), strict=False))
    done = []
    for i in range(len(batch)):
        if i not in outcomes:  # a batch cut by --max-requests keeps the items before the first one unanswered
            break
        done.append(outcomes[i])
    return done


def run_performance(session: Session, items: list[EvalItem]) -> SuiteResult:
    """Answer every item (choice items by log-likelihood where the target gives it, the rest generated, in batches);
    score it; time it; price it."""
    outcomes = [o for rows in session.map(batched(items), lambda b: _answer(session, b), "performance", weight=len)
                for o in rows]
    result = SuiteResult("performance")
    if not outcomes:
        return result
    m = result.metrics
    m.append(make_metric("performance.accuracy", [o.correct for o in outcomes],
                         description="share of evaluation items answered right"))
    for scorer in sorted({o.scorer for o in outcomes}):
        rows = [o.correct for o in outcomes if o.scorer == scorer]
        if len(rows) < len(outcomes):
            m.append(make_metric(f"performance.accuracy_{scorer}", rows))
    latencies = [o.latency_s for o in outcomes]
    m.append(make_metric("performance.latency_p50_s", latencies, statistic="p50", better="lower", unit="s"))
    m.append(make_metric("performance.latency_p95_s", latencies, statistic="p95", better="lower", unit="s"))
    generated = [o for o in outcomes if not o.by_loglikelihood]
    # Items answered by log-likelihood generate nothing: when no item generated, the rate is of option tokens scored.
    rate, what = ([[o.completion_tokens, o.latency_s] for o in generated], "completion tokens") if generated else \
        ([[o.scored_tokens, o.latency_s] for o in outcomes], "option tokens scored (no item generated)")
    m.append(make_metric("performance.tokens_per_s", rate, statistic="ratio", unit="tokens/s",
                         description=f"{what} per second of latency"))
    prices = [o.price_usd for o in outcomes]
    details: dict[str, Any] = {"items": len(outcomes), "answered_by_loglikelihood": len(outcomes) - len(generated),
                               "pricing": "per-token catalogue price" if session.target.kind
                               == "api" else "measured CPU/GPU time priced by truecost.estimate"}
    if all(p is not None for p in prices):
        m.append(make_metric("performance.cost_per_1k_requests_usd", [1000.0 * float(p or 0.0) for p in prices],
                             better="lower", unit="USD", description="mean request price times 1,000"))
    else:
        details["cost_note"] = (f"no per-token price for model {session.target.model_name!r} in the catalogue; "
                                "cost per 1,000 requests left out")
    details["examples"] = [{"correct": o.correct, "scorer": o.scorer, "response": o.response[:200]}
                           for o in outcomes[:5]]
    result.details = details
    result.items = [{"dataset": "eval", "prompt": item.prompt, "answer": o.response, "expected": str(item.expected),
                     "correct": bool(o.correct), "decided_by": f"scorer: {o.scorer}"}
                    for item, o in zip(items, outcomes, strict=False)]
    return result
