"""The demo's corpus and its defect generator: real text, known defects, reproducible per seed."""

from __future__ import annotations

import random

import pytest

from truecost.demo.corpus import stdlib_documents, train_heldout_split
from truecost.demo.defects import BOILERPLATE_LINES, DefectRates, _mojibake, luhn_valid_card, make_poor_copy


@pytest.fixture(scope="module")
def docs():
    return stdlib_documents()[:300]


def _luhn_ok(number: str) -> bool:
    """Independent Luhn check: sum digits of (2 x every second digit from the right)."""
    total = 0
    for pos, char in enumerate(number[::-1]):
        digit = int(char)
        total += sum(divmod(digit * 2, 10)) if pos % 2 else digit
    return total % 10 == 0


def test_corpus_is_real_prose_from_the_stdlib(docs) -> None:
    assert len(docs) == 300
    assert all(len(d.text.split()) >= 40 for d in docs)
    assert len({d.id for d in docs}) == len(docs)
    assert any("return" in d.text.lower() for d in docs)


def test_luhn_cards_pass_an_independent_check() -> None:
    rng = random.Random(3)
    cards = [luhn_valid_card(rng) for _ in range(200)]
    assert all(len(c) == 16 and _luhn_ok(c) for c in cards)
    assert not _luhn_ok(cards[0][:-1] + str((int(cards[0][-1]) + 1) % 10))


def test_mojibake_is_the_real_kind_that_ftfy_repairs() -> None:
    ftfy = pytest.importorskip("ftfy")
    broken = _mojibake("It's a \"quoted\" word - really.")
    assert "â€" in broken
    assert ftfy.fix_text(broken, uncurl_quotes=False) == "It\u2019s a \u201dquoted\u201d word \u2014 really."
    assert ftfy.fix_text(broken) == "It's a \"quoted\" word \u2014 really."


def test_defects_follow_the_rates_and_the_seed(docs) -> None:
    rates = DefectRates(exact_dup=0.15, near_dup=0.1, mojibake=0.08, boilerplate=0.3, pii=0.1, junk=0.1)
    poor = make_poor_copy(docs, seed=7, rates=rates)
    counts = poor.counts()
    n = len(docs)
    assert counts["exact_dup"] == int(n * rates.exact_dup) and counts["near_dup"] == int(n * rates.near_dup)
    assert counts["junk"] == int(n * rates.junk) and counts["boilerplate"] == int(n * rates.boilerplate)
    assert len(poor.docs) == n + counts["exact_dup"] + counts["near_dup"] + counts["junk"]
    default = make_poor_copy(docs, seed=7).counts()  # the data file's rates: no near-duplicates injected
    assert "near_dup" not in default and default["exact_dup"] == int(n * DefectRates.from_data().exact_dup)
    texts = {d.id: d.text for d in poor.docs}
    for doc_id, kinds in poor.defects.items():
        if "exact_dup" in kinds:
            assert texts[doc_id] == texts[poor.source_of[doc_id]]
        if "boilerplate" in kinds:
            assert sum(line in texts[doc_id] for line in BOILERPLATE_LINES) == 2
    again = make_poor_copy(docs, seed=7, rates=rates)
    assert [d.text for d in again.docs] == [d.text for d in poor.docs]
    other = make_poor_copy(docs, seed=8, rates=rates)
    assert [d.text for d in other.docs] != [d.text for d in poor.docs]


def test_split_is_disjoint_and_seeded(docs) -> None:
    train, held = train_heldout_split(docs, 0.2, seed=1)
    assert len(held) == 60 and not {d.id for d in train} & {d.id for d in held}
    assert train_heldout_split(docs, 0.2, seed=1)[1] == held
