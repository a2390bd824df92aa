"""Performance suite: the user's evaluation set scored five ways, plus latency, throughput and cost per 1,000
requests (priced by truecost.estimate: per-token prices for API models, measured compute for local ones)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from truecost.errors import UserError
from truecost.review.files import read_jsonl, validate, where
from truecost.review.results import SuiteResult, make_metric
from truecost.review.scorers import choice_index, score
from truecost.review.session import LETTERS, Session
from truecost.review.targets import Message


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


def _messages(item: EvalItem) -> list[Message]:
    prompt = item.prompt
    if item.scorer == "choice" and item.choices:
        prompt += "\n" + "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(item.choices))
        prompt += "\nAnswer with the letter of one option."
    messages: list[Message] = [{"role": "system", "content": item.system}] if item.system else []
    return messages + [{"role": "user", "content": prompt}]


def run_performance(session: Session, items: list[EvalItem]) -> SuiteResult:
    """Answer every item; score it; time it; price it."""

    def one(item: EvalItem) -> _Outcome:
        generation = session.generate(_messages(item))
        picked = None
        if item.scorer == "choice" and item.choices and session.target.has_logprobs():
            picked = session.choose(item.prompt, item.choices)
        correct = score(item.scorer, generation.text, str(item.expected), choices=item.choices,
                        tolerance=item.tolerance, picked=picked)
        return _Outcome(correct, item.scorer, generation.latency_s, generation.completion_tokens,
                        session.request_price_usd(generation), generation.text)

    outcomes = session.map(items, one, "performance")
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
    m.append(make_metric("performance.tokens_per_s", [[o.completion_tokens, o.latency_s] for o in outcomes],
                         statistic="ratio", unit="tokens/s", description="completion tokens per second of latency"))
    prices = [o.price_usd for o in outcomes]
    details: dict[str, Any] = {"items": len(outcomes), "pricing": "per-token catalogue price" if session.target.kind
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
