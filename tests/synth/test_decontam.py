"""Decontamination by word n-grams: planted evaluation items go, near misses stay, and the index agrees with a
brute-force set intersection on random texts."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.synth.conftest import write_jsonl
from truecost.errors import UserError
from truecost.synth.decontam import EvalItem, EvalSet, NgramIndex, load_eval_set, ngram_words

ANSWER = ("The scheduler assigns every incoming job to the least loaded worker and records the decision in the "
          "audit log for later review.")


def _set(*texts: str) -> EvalSet:
    return EvalSet("bench", tuple(EvalItem(f"item-{i}", t) for i, t in enumerate(texts)))


def test_a_planted_13_gram_is_found_whatever_its_case_and_punctuation() -> None:
    planted = ("Q: Which worker? A: THE SCHEDULER -- assigns every incoming job, to the least loaded worker; "
               "and records!")
    index = NgramIndex.build([_set("An unrelated item about cooking pasta in salted boiling water for ten minutes.",
                                   planted)])
    hit = index.find(ANSWER)
    assert hit is not None
    assert (hit.eval_set, hit.eval_id, hit.n) == ("bench", "item-1", 13)
    assert hit.ngram == "the scheduler assigns every incoming job to the least loaded worker and records"


def test_a_near_miss_sharing_twelve_words_is_kept() -> None:
    # 12 words in common, then a changed word: no 13 consecutive words are shared.
    near = ("the scheduler assigns every incoming job to the least loaded worker and NOTES the decision in the "
            "audit log for later review")
    assert len(ngram_words(near)) >= 13
    assert NgramIndex.build([_set(near)]).find(ANSWER) is None


def test_short_items_are_matched_whole_or_counted_unchecked() -> None:
    index = NgramIndex.build([_set("records the decision in the audit log for later review", "least loaded worker")])
    hit = index.find(ANSWER)
    assert hit is not None and hit.n == 10 and hit.eval_id == "item-0"
    assert index.unchecked == {"bench": 1} and index.items == {"bench": 1}


def test_index_agrees_with_brute_force_on_random_texts() -> None:
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(12)]  # a small vocabulary, so overlaps happen by chance
    for _ in range(200):
        n = rng.randint(3, 6)
        items = [" ".join(rng.choices(vocab, k=rng.randint(n, 15))) for _ in range(3)]
        text = " ".join(rng.choices(vocab, k=rng.randint(1, 30)))
        words = ngram_words(text)
        grams = {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
        expected = any(tuple(ngram_words(item)[i:i + n]) in grams for item in items
                       for i in range(len(ngram_words(item)) - n + 1))
        found = NgramIndex.build([_set(*items)], n=n, min_n=n).find(text)
        assert (found is not None) == expected
        if found is not None:
            assert tuple(found.ngram.split()) in grams


def test_eval_sets_load_from_jsonl_in_any_row_shape(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mmlu.jsonl", [
        {"id": "q1", "question": "What is two plus two?", "answer": "4"},
        {"messages": [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello"}]}])
    eval_set = load_eval_set(f"mmlu={path}")
    assert eval_set.name == "mmlu" and [i.id for i in eval_set.items] == ["q1", "mmlu:2"]
    assert "two plus two" in eval_set.items[0].text and "4" in eval_set.items[0].text
    assert load_eval_set(str(path)).name == "mmlu"
    with pytest.raises(UserError, match="does not exist"):
        load_eval_set(f"x={tmp_path / 'missing.jsonl'}")
