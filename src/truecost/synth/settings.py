"""Settings of one synth run: what to generate, with what, from which seeds, under which budget and filters."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError

from truecost.config import Section, describe_validation_error
from truecost.errors import UserError

SynthTask = Literal["qa", "evolve", "paraphrase"]
OutputFormat = Literal["chat", "prompt-response"]


class SynthSettings(Section):
    """Every choice of a run, with its default; the CLI's options map one to one onto these fields."""

    name: str = "synth"
    task: SynthTask = "qa"
    generator: str  # hf:PATH, hf:pkg:NAME or openai:URL#model
    seeds: list[str] = Field(min_length=1)  # files, folders, or builtin:stdlib
    max_seeds: int | None = Field(50, ge=1)  # sampled with `seed` when there are more
    per_seed: int = Field(1, ge=1)  # requests per seed
    examples_per_prompt: int = Field(3, ge=1)  # evolve: seed instructions shown per request
    max_document_chars: int = Field(2000, ge=100)
    qa_context: bool = False  # qa: put the document in the example's prompt (reading comprehension)
    max_new_tokens: int = Field(128, ge=1)
    temperature: float = Field(0.7, ge=0, le=2)
    top_p: float = Field(0.95, gt=0, le=1)
    seed: int = 0
    template: str | None = None  # a TOML template file replacing the task's built-in one
    answer_template: str | None = None  # evolve/paraphrase: the template that answers new instructions
    # Local models
    batch_size: int = Field(8, ge=1)
    threads: int | None = Field(None, ge=1)
    # Endpoints
    concurrency: int = Field(8, ge=1)
    retries: int = Field(4, ge=0)
    backoff_s: float = Field(0.5, ge=0)
    timeout_s: float = Field(60.0, gt=0)
    api_key: str | None = None
    price_in_usd_per_1m: float | None = Field(None, ge=0)
    price_out_usd_per_1m: float | None = Field(None, ge=0)
    # Budget: never passed (endpoint requests reserve their worst case first)
    max_requests: int | None = Field(None, ge=1)
    max_usd: float | None = Field(None, gt=0)
    # Filters
    filters: str | None = None  # a curate recipe (TOML/JSON); default: curate's rules fitted to short examples
    real: list[str] = Field(default_factory=list)  # the real training set: synthetic copies of it are dropped
    eval_sets: list[str] = Field(default_factory=list)  # NAME=PATH: evaluation sets to decontaminate against
    min_grounding: float = Field(0.5, ge=0, le=1)  # qa: share of the answer's content words from the document
    ngram: int = Field(13, ge=1)
    ngram_min: int = Field(8, ge=1)
    judge: str | None = None  # a generator spec, or "self" for the generator itself
    judge_threshold: int = Field(7, ge=1, le=10)
    judge_template: str | None = None
    # Output
    format: OutputFormat = "chat"


def make_settings(**values: object) -> SynthSettings:
    """Validated settings; a mistake becomes one line naming the field."""
    try:
        return SynthSettings.model_validate(values)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, "synth")) from None
