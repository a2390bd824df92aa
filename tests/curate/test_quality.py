"""Quality rules on hand-made documents whose answer is known, and the n-gram rules against a brute-force reference."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from truecost.curate.document import Document
from truecost.curate.settings import GopherSettings, QualitySettings
from truecost.curate.steps.base import StepStats
from truecost.curate.steps.quality import C4Rules, FineWebRules, GopherQuality, GopherRepetition, QualityStep

GOOD_SENTENCES = [
    "The committee reviewed the budget and agreed that the new library should open in the spring.",
    "Several residents spoke with the council about parking near the school and the old market.",
    "A local historian explained how the river shaped the town over the last two centuries.",
    "Volunteers have planted trees along the main road, and they hope to finish before winter.",
    "The mayor thanked everyone who helped with the festival, which raised money for the clinic.",
    "Teachers said that smaller classes would make a real difference to the children they teach.",
    "Farmers at the market sold apples, cheese and bread to visitors from the neighbouring villages.",
    "The bridge will close for repairs next month, so drivers should plan a different route home.",
]


def good_text() -> str:
    return "\n".join(GOOD_SENTENCES)


def check(rule: object, text: str) -> tuple[bool, StepStats]:
    stats = StepStats("quality")
    ok = rule.check(Document("d", text), stats)  # type: ignore[attr-defined]
    return ok, stats


def removed_rule(stats: StepStats) -> str:
    return stats.removals[0].reason["rule"]


def test_good_document_passes_every_rule() -> None:
    stats = StepStats("quality")
    doc = Document("d", good_text())
    assert QualityStep().process(doc, stats)
    assert stats.removals == []


@pytest.mark.parametrize(("text", "rule"), [
    ("Too short to be a document with the words of a page.", "gopher_word_count"),
    (" ".join(["supercalifragilisticexpialidocious"] * 60) + " the and", "gopher_mean_word_length"),
    (good_text() + "\n" + " ".join(["#tag"] * 20), "gopher_hash_word_ratio"),
    (good_text() + "\n" + "... " * 20, "gopher_ellipsis_word_ratio"),
    ("\n".join("- " + s for s in GOOD_SENTENCES), "gopher_bullet_lines_ratio"),
    ("\n".join(s[:-1] + "..." if i % 2 else s for i, s in enumerate(GOOD_SENTENCES)), "gopher_ellipsis_lines_ratio"),
    (good_text() + "\n" + " ".join(str(n) for n in range(100)), "gopher_alpha_words_ratio"),
    (" ".join(["dog cat bird fish horse"] * 3) + " " + " ".join(f"word{chr(97 + i % 26)}x" for i in range(60)),
     "gopher_stop_words"),
])
def test_gopher_quality_rules(text: str, rule: str) -> None:
    ok, stats = check(GopherQuality(GopherSettings()), text)
    assert not ok
    assert removed_rule(stats) == rule
    reason = stats.removals[0].reason
    assert {"value", "threshold"} <= reason.keys()


def test_gopher_word_count_value_and_threshold() -> None:
    ok, stats = check(GopherQuality(GopherSettings()), "one two three the and")
    assert not ok
    assert stats.removals[0].reason == {"rule": "gopher_word_count", "value": 5, "threshold": [50, 100_000]}


def test_gopher_repetition_duplicate_lines() -> None:
    text = good_text() + "\n" + "\n".join([GOOD_SENTENCES[0]] * 6)
    ok, stats = check(GopherRepetition(GopherSettings()), text)
    assert not ok
    # 14 lines, 6 repeat an earlier one: 6/14 = 0.43 > 0.30.
    assert removed_rule(stats) == "gopher_dup_line_fraction"
    assert stats.removals[0].reason["value"] == pytest.approx(6 / 14, abs=1e-4)


def test_gopher_repetition_top_bigram() -> None:
    # "quantum flux" repeated dominates the characters: its share is far above 0.20.
    text = " ".join(["quantum flux"] * 40) + " " + " ".join(GOOD_SENTENCES[:2])
    ok, stats = check(GopherRepetition(GopherSettings()), text)
    assert not ok
    assert removed_rule(stats) == "gopher_top_2gram_char_fraction"


def test_gopher_repetition_passes_varied_text() -> None:
    ok, _ = check(GopherRepetition(GopherSettings()), good_text())
    assert ok


def _brute_dup_ngram_fraction(words: list[str], n: int) -> float:
    """Reference: characters of words covered by an n-gram occurrence that repeats an earlier one."""
    seen: set[tuple[str, ...]] = set()
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        gram = tuple(words[i:i + n])
        if gram in seen:
            for k in range(i, i + n):
                covered[k] = True
        seen.add(gram)
    total = sum(len(w) for w in words)
    return sum(len(w) for w, c in zip(words, covered, strict=True) if c) / total


def _brute_top_ngram_fraction(words: list[str], n: int) -> float:
    counts: dict[tuple[str, ...], int] = {}
    for i in range(len(words) - n + 1):
        gram = tuple(words[i:i + n])
        counts[gram] = counts.get(gram, 0) + 1
    top = max(counts.values())
    if top < 2:
        return 0.0
    chars = max(sum(len(w) for w in g) for g, c in counts.items() if c == top)
    return top * chars / sum(len(w) for w in words)


@pytest.mark.parametrize("seed", range(12))
def test_ngram_rules_match_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    vocab = [rng.choice("abcdefgh") * rng.randint(1, 6) + str(i) for i in range(rng.randint(3, 40))]
    words = [rng.choice(vocab) for _ in range(rng.randint(20, 300))]
    text = " ".join(words)
    for n in range(5, 11):
        expected = _brute_dup_ngram_fraction(words, n)
        cfg = GopherSettings(max_top_ngram_char_fraction={}, max_dup_ngram_char_fraction={n: expected - 1e-9})
        ok, stats = check(GopherRepetition(cfg), text)
        if expected > 0:
            assert not ok
            assert stats.removals[0].reason["value"] == pytest.approx(expected, abs=1e-4)
        cfg = GopherSettings(max_top_ngram_char_fraction={}, max_dup_ngram_char_fraction={n: expected + 1e-6})
        assert GopherRepetition(cfg)._check_ngrams(Document("d", text), StepStats("q"))
    for n in (2, 3, 4):
        expected = _brute_top_ngram_fraction(words, n)
        cfg = GopherSettings(max_top_ngram_char_fraction={n: expected - 1e-9}, max_dup_ngram_char_fraction={})
        ok, stats = check(GopherRepetition(cfg), text)
        if expected > 0:
            assert not ok
            assert stats.removals[0].reason["value"] == pytest.approx(expected, abs=1e-4)


def test_c4_drops_bad_lines_and_keeps_good_ones() -> None:
    lines = [*GOOD_SENTENCES[:4], "Click here", "Please enable JavaScript to view the comments below.",
             "Read our privacy policy before you sign up for the newsletter.", "A heading without an end mark"]
    stats = StepStats("quality")
    doc = Document("d", "\n".join(lines))
    assert C4Rules(QualitySettings().c4).check(doc, stats)
    assert doc.text == "\n".join(GOOD_SENTENCES[:4])
    assert stats.changes["c4_lines_dropped"] == 4


@pytest.mark.parametrize(("text", "rule"), [
    (good_text() + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.", "c4_lorem_ipsum"),
    (good_text() + "\nfunction f() { return 1; }", "c4_curly_bracket"),
    ("\n".join(GOOD_SENTENCES[:2]) + "\nshort line", "c4_sentences"),
])
def test_c4_page_rules(text: str, rule: str) -> None:
    rules = C4Rules(QualitySettings().c4)
    stats = StepStats("quality")
    doc = Document("d", text)
    ok = rules.check_page(doc, stats) and rules.check(doc, stats)
    assert not ok
    assert removed_rule(stats) == rule


@pytest.mark.parametrize(("text", "rule", "value"), [
    ("\n".join(s.rstrip(".") for s in GOOD_SENTENCES), "fineweb_punct_line_fraction", 0.0),
    (good_text() + "\n" + "\n".join([GOOD_SENTENCES[0]] * 2), "fineweb_dup_line_char_fraction", None),
    (GOOD_SENTENCES[0] + "\nFirst one.\nSecond one.\nThird one.", "fineweb_short_line_fraction", 0.75),
])
def test_fineweb_rules(text: str, rule: str, value: float | None) -> None:
    ok, stats = check(FineWebRules(QualitySettings().fineweb), text)
    assert not ok
    assert removed_rule(stats) == rule
    if value is not None:
        assert stats.removals[0].reason["value"] == pytest.approx(value)


def test_rules_share_one_tokenisation() -> None:
    doc = Document("d", good_text())
    first = doc.words
    QualityStep(QualitySettings(rules=["gopher_quality", "gopher_repetition"])).process(doc, StepStats("q"))
    assert doc.words is first  # not re-split by any rule
    doc.text = "changed text"
    assert doc.words == ["changed", "text"]


def test_removed_set_does_not_depend_on_rule_order(shared_data: Path) -> None:
    """QualityStep runs cheap rules first; the documents it removes must be those failing any rule on its own."""
    rows = [json.loads(line) for line in (shared_data / "dedup_sample" / "corpus.jsonl").open(encoding="utf-8")]
    q = QualitySettings()
    expected = set()
    for r in rows:
        st = StepStats("q")
        alone = [GopherQuality(q.gopher).check(Document(r["id"], r["text"]), st),
                 GopherRepetition(q.gopher).check(Document(r["id"], r["text"]), st),
                 C4Rules(q.c4).check_page(Document(r["id"], r["text"]), st)]
        c4_doc = Document(r["id"], r["text"])
        alone.append(C4Rules(q.c4).check(c4_doc, st) and FineWebRules(q.fineweb).check(c4_doc, st))
        if not all(alone):
            expected.add(r["id"])
    stats = StepStats("quality")
    kept = QualityStep().map([Document(r["id"], r["text"]) for r in rows], stats)
    assert {rm.id for rm in stats.removals} == expected
    assert len(kept) == len(rows) - len(expected) > 0
