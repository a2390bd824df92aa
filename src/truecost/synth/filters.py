"""The filters every generated example passes, in order, each counting what it let through and why it dropped
the rest: curate's normalisation and quality rules, decontamination against evaluation sets, curate's exact and
near de-duplication (within the synthetic set and against the real training set), and an optional LLM judge.

Curate's defaults are for web pages (Gopher wants 50 words); a Q/A pair is a few dozen words, so synth's default
keeps Gopher's quality rules with a 10-word minimum, and Gopher's repetition rules without the top 2-4-gram
limits, which mean nothing at that length (a question that names its subject once and an answer that names it
again already pass 20% of characters in one 2-gram). The duplicate line, paragraph and 5-10-gram rules stay: they
catch the loops small generators fall into ("The answer is: The answer is: ...") and answers that only repeat
the question. Pass the recipe you curate real data with (`--filters recipe.toml`) to hold synthetic data to
exactly the same rules.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from truecost.curate.document import Document, split_words
from truecost.curate.settings import CurateSettings
from truecost.synth.decontam import NgramIndex
from truecost.synth.files import Row

# The filters after parsing, in the order they run (parsing a reply is the first gate, counted by the task).
FILTERS = ("normalize", "quality", "grounding", "decontaminate", "exact", "near", "judge")
REAL_PREFIX = "real:"
SNIPPET_CHARS = 200


def default_filter_settings() -> CurateSettings:
    """Curate's settings with the quality rules fitted to short examples (see the module docstring)."""
    return CurateSettings.model_validate({"quality": {
        "rules": ["gopher_quality", "gopher_repetition"],
        "gopher": {"min_words": 10, "max_top_ngram_char_fraction": {}}}})


# Function words that say nothing about where an answer came from (Gopher's stop words and a few more).
_FUNCTION_WORDS = frozenset((
    "the", "be", "to", "of", "and", "that", "have", "with", "this", "from", "what", "which", "when", "where", "there",
    "their", "they", "them", "will", "would", "could", "should", "about", "into", "your", "you", "are", "was", "were",
    "been", "being", "does", "used", "uses", "using"))


def grounding(answer: str, source: str) -> float:
    """Share of the answer's content words (4+ letters, not function words) found in the source document: a
    grounded answer is mostly made of the document's own words. 1.0 for an answer with no content words."""
    source_words = set(split_words(source.lower()))
    content = [w for w in split_words(answer.lower()) if len(w) >= 4 and w not in _FUNCTION_WORDS]
    return sum(w in source_words for w in content) / len(content) if content else 1.0


@dataclass
class Example:
    """One generated training example and where it came from."""

    id: str
    prompt: str
    response: str
    provenance: dict[str, Any]
    judge_score: int | None = None
    source: str | None = None  # qa: the document the answer must come from (not written out)

    @property
    def text(self) -> str:
        """Prompt and response as one text, as dedup, quality rules and decontamination read it."""
        return f"{self.prompt}\n\n{self.response}"


@dataclass
class FilterCount:
    """What one filter saw and let through, and its rejections by rule."""

    name: str
    seen: int = 0
    kept: int = 0
    removed_by_rule: Counter[str] = field(default_factory=Counter)
    skipped: str | None = None

    def summary(self) -> dict[str, Any]:
        return {"filter": self.name, "in": self.seen, "out": self.kept, "removed": self.seen - self.kept,
                "acceptance_rate": round(self.kept / self.seen, 4) if self.seen else None,
                "removed_by_rule": dict(sorted(self.removed_by_rule.items())), "skipped": self.skipped}


@dataclass
class Rejection:
    """One dropped example (or reply): which filter, which rule, and the rule's evidence."""

    id: str
    filter: str
    rule: str
    detail: dict[str, Any]
    snippet: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "filter": self.filter, "rule": self.rule, **self.detail, "snippet": self.snippet}


# Per example: (score, error); error says why there is no score (budget, endpoint failure).
JudgeFn = Callable[[list[Example]], list[tuple[int | None, str | None]]]


@dataclass
class FilterResult:
    """The examples that passed every filter, every rejection, and the count per filter."""

    kept: list[Example]
    rejections: list[Rejection]
    counts: list[FilterCount]


class FilterChain:
    """Runs the filters over a batch of examples; `counts` and `rejections` say what each did."""

    def __init__(self, settings: CurateSettings | None = None, *, real: list[Row] | None = None,
                 eval_index: NgramIndex | None = None, judge: JudgeFn | None = None,
                 judge_threshold: int = 7, min_grounding: float = 0.5) -> None:
        self.settings = settings or default_filter_settings()
        self.real = [Document(f"{REAL_PREFIX}{row.id}", row.text) for row in real or []]
        self.eval_index = eval_index
        self.judge, self.judge_threshold = judge, judge_threshold
        self.min_grounding = min_grounding
        self.counts = {name: FilterCount(name) for name in FILTERS}
        self.rejections: list[Rejection] = []

    def reject(self, filter_name: str, example_id: str, rule: str, text: str, **detail: Any) -> None:
        """Record one rejection."""
        self.counts[filter_name].removed_by_rule[rule] += 1
        self.rejections.append(Rejection(example_id, filter_name, rule, detail, text[:SNIPPET_CHARS]))

    def run(self, examples: list[Example]) -> FilterResult:
        """Every filter in order; each sees only what the one before kept."""
        stages: list[tuple[str, Callable[[list[Example]], list[Example]]]] = [
            ("normalize", self._normalize), ("quality", self._quality), ("grounding", self._grounding),
            ("decontaminate", self._decontaminate),
            ("exact", self._exact), ("near", self._near), ("judge", self._judge)]
        for name, stage in stages:
            self.counts[name].seen += len(examples)
            examples = stage(examples)
            self.counts[name].kept += len(examples)
        return FilterResult(examples, self.rejections, [self.counts[name] for name in FILTERS])

    def _normalize(self, examples: list[Example]) -> list[Example]:
        from truecost.curate.steps.base import StepStats
        from truecost.curate.steps.normalize import NormalizeStep

        step, stats = NormalizeStep(self.settings.normalize), StepStats("normalize")
        kept = []
        for ex in examples:
            ex.prompt, ex.response = step.normalize_text(ex.prompt, stats), step.normalize_text(ex.response, stats)
            if ex.prompt and ex.response:
                kept.append(ex)
            else:
                self.reject("normalize", ex.id, "empty_after_normalize", ex.text)
        return kept

    def _quality(self, examples: list[Example]) -> list[Example]:
        from truecost.curate.steps.base import StepStats
        from truecost.curate.steps.quality import QualityStep

        stats = StepStats("quality")
        docs = QualityStep(self.settings.quality).map([Document(ex.id, ex.text) for ex in examples], stats)
        by_id = {ex.id: ex for ex in examples}
        for removal in stats.removals:
            reason = dict(removal.reason)
            self.reject("quality", removal.id, str(reason.pop("rule")), by_id[removal.id].text, **reason)
        return [by_id[doc.id] for doc in docs]

    def _grounding(self, examples: list[Example]) -> list[Example]:
        if self.min_grounding <= 0 or all(ex.source is None for ex in examples):
            self.counts["grounding"].skipped = "no source documents" if self.min_grounding > 0 else "turned off"
            return examples
        kept = []
        for ex in examples:
            share = grounding(ex.response, ex.source) if ex.source is not None else 1.0
            if share >= self.min_grounding:
                kept.append(ex)
            else:
                self.reject("grounding", ex.id, "answer_not_in_source", ex.text, value=round(share, 4),
                            threshold=self.min_grounding)
        return kept

    def _decontaminate(self, examples: list[Example]) -> list[Example]:
        if self.eval_index is None:
            self.counts["decontaminate"].skipped = "no evaluation sets given"
            return examples
        kept = []
        for ex in examples:
            hit = self.eval_index.find(ex.text)
            if hit is None:
                kept.append(ex)
            else:
                self.reject("decontaminate", ex.id, "eval_ngram_overlap", ex.text, **hit.to_dict())
        return kept

    def _dedup_rejections(self, name: str, examples: list[Example], removed: dict[str, dict[str, Any]]
                          ) -> list[Example]:
        kept = []
        for ex in examples:
            reason = removed.get(ex.id)
            if reason is None:
                kept.append(ex)
                continue
            reason = dict(reason)
            rule = str(reason.pop("rule", name))
            of_real = str(reason.get("kept", "")).startswith(REAL_PREFIX)
            self.reject(name, ex.id, f"{rule}_of_real" if of_real else rule, ex.text, **reason)
        return kept

    def _exact(self, examples: list[Example]) -> list[Example]:
        from truecost.curate.dedup import find_exact_duplicates

        # Real documents first: the first copy is the one kept, so a synthetic copy of real data always goes.
        result = find_exact_duplicates([*self.real, *(Document(ex.id, ex.text) for ex in examples)],
                                       **self.settings.exact)
        return self._dedup_rejections("exact", examples, result.removed)

    def _near(self, examples: list[Example]) -> list[Example]:
        from truecost.curate.dedup import find_near_duplicates

        params = {k: v for k, v in self.settings.near.items() if k != "update_index"}
        docs = [Document(ex.id, ex.text) for ex in examples]
        if not self.real:
            return self._dedup_rejections("near", examples, find_near_duplicates(docs, **params).removed)
        # The real set goes into a near-dedup index first: curate removes every new document of a cluster that
        # holds an indexed one, which is exactly "a synthetic near-copy of real data goes".
        with tempfile.TemporaryDirectory(prefix="truecost-synth-index-") as index_dir:
            find_near_duplicates(self.real, index_dir=Path(index_dir), **params)
            result = find_near_duplicates(docs, index_dir=Path(index_dir), update_index=False, **params)
        return self._dedup_rejections("near", examples, result.removed)

    def _judge(self, examples: list[Example]) -> list[Example]:
        if self.judge is None:
            self.counts["judge"].skipped = "no judge given"
            return examples
        kept = []
        for ex, (score, error) in zip(examples, self.judge(examples), strict=True):
            ex.judge_score = score
            if error is not None:
                self.reject("judge", ex.id, "judge_not_run", ex.text, error=error)
            elif score is None:
                self.reject("judge", ex.id, "judge_no_score", ex.text)
            elif score < self.judge_threshold:
                self.reject("judge", ex.id, "judge_below_threshold", ex.text, value=score,
                            threshold=self.judge_threshold)
            else:
                kept.append(ex)
        return kept
