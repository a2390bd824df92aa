"""Decontamination: drop a generated example that shares a word n-gram with any item of a named evaluation set.

As in GPT-3 (Brown et al. 2020, appendix C) and the lm-evaluation-harness's decontamination (its `janitor`):
13-grams of words, case and punctuation ignored. An evaluation item shorter than `n` words is matched whole
(every one of its words, in order) when it has at least `min_n` words, so short items are not silently skipped;
items shorter than that are counted as unchecked. Every drop records the evaluation set, the item and the n-gram.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from truecost.curate.document import split_words
from truecost.errors import UserError
from truecost.synth.files import read_rows


@dataclass(frozen=True)
class EvalItem:
    """One evaluation item: its id and all its text (question, choices, answer)."""

    id: str
    text: str


@dataclass(frozen=True)
class EvalSet:
    """A named evaluation set the synthetic data must not leak."""

    name: str
    items: tuple[EvalItem, ...]


@dataclass(frozen=True)
class Contamination:
    """Why an example was dropped: the evaluation item it overlaps and the shared n-gram."""

    eval_set: str
    eval_id: str
    ngram: str
    n: int

    def to_dict(self) -> dict[str, str | int]:
        return {"eval_set": self.eval_set, "eval_id": self.eval_id, "ngram": self.ngram, "n": self.n}


def ngram_words(text: str) -> list[str]:
    """The words n-grams are made of: curate's word split of the lower-cased text (punctuation ignored)."""
    return split_words(text.lower())


def load_eval_set(spec: str) -> EvalSet:
    """`NAME=PATH` (or a bare PATH, named after its file): a JSONL file or folder of evaluation items."""
    name, sep, location = spec.partition("=")
    if not sep:
        name, location = Path(spec).stem, spec
    if not name or not location:
        raise UserError(f"evaluation set {spec!r}: write NAME=PATH")
    items = tuple(EvalItem(row.id, row.text) for row in read_rows(Path(location), f"evaluation set {name}"))
    if not items:
        raise UserError(f"evaluation set {name} ({location}) holds no items")
    return EvalSet(name, items)


@dataclass
class NgramIndex:
    """Every n-gram of the evaluation sets, mapped to the first item that holds it."""

    n: int = 13
    min_n: int = 8
    grams: dict[int, dict[tuple[str, ...], tuple[str, str]]] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)  # per set: items indexed
    unchecked: dict[str, int] = field(default_factory=dict)  # per set: items too short to match safely

    @classmethod
    def build(cls, sets: Iterable[EvalSet], n: int = 13, min_n: int = 8) -> NgramIndex:
        if n < 1 or not 1 <= min_n <= n:
            raise UserError(f"decontamination n-gram sizes must satisfy 1 <= min_n <= n (got n={n}, min_n={min_n})")
        index = cls(n=n, min_n=min_n)
        for eval_set in sets:
            index.add(eval_set)
        return index

    def add(self, eval_set: EvalSet) -> None:
        """Index one evaluation set's items."""
        self.items.setdefault(eval_set.name, 0)
        self.unchecked.setdefault(eval_set.name, 0)
        for item in eval_set.items:
            words = ngram_words(item.text)
            if len(words) < self.min_n:
                self.unchecked[eval_set.name] += 1
                continue
            size = min(self.n, len(words))
            table = self.grams.setdefault(size, {})
            for start in range(len(words) - size + 1):
                table.setdefault(tuple(words[start:start + size]), (eval_set.name, item.id))
            self.items[eval_set.name] += 1

    def find(self, text: str) -> Contamination | None:
        """The first evaluation n-gram found in `text`, or None when it shares none."""
        words = ngram_words(text)
        for size, table in sorted(self.grams.items(), reverse=True):
            for start in range(len(words) - size + 1):
                gram = tuple(words[start:start + size])
                hit = table.get(gram)
                if hit is not None:
                    return Contamination(eval_set=hit[0], eval_id=hit[1], ngram=" ".join(gram), n=size)
        return None
