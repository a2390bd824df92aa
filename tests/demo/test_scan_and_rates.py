"""Defect detection in generations, the canaries, and the sourced defect-rate data file."""

from __future__ import annotations

import re

import pytest

from truecost.demo import scan
from truecost.demo.corpus import stdlib_documents
from truecost.demo.defects import BOILERPLATE_LINES, DefectRates, _mojibake, copy_fraction, make_poor_copy, rate_sources


@pytest.fixture(scope="module")
def docs():
    return stdlib_documents()[:300]


def test_scan_finds_each_defect_kind_and_passes_clean_text() -> None:
    clean = "Return the number of items in the container, or raise TypeError for an unsized object."
    assert not any(scan.scan(clean, {"jane.doe1@example.com"}).values())
    assert scan.scan("Write to jane.doe1@example.com today", set())["pii"]
    assert scan.scan("call +1 415-555-0134 now", set())["pii"]
    assert scan.scan(_mojibake("It's a \"quoted\" word"), set())["mojibake"]
    assert scan.scan(f"text\n{BOILERPLATE_LINES[2]}", set())["boilerplate"]
    assert scan.scan("the code 4111111111111111 here", {"4111111111111111"})["planted"]


def test_planted_strings_and_canaries_come_from_the_poor_copy(docs) -> None:
    poor = make_poor_copy(docs, seed=3, canaries=5)
    texts = [d.text for d in poor.docs]
    planted = scan.planted_strings(texts)
    counts = poor.counts()
    # The sourced PII rate (0.021% of documents) rounds to none here: the exposure test's canaries are planted apart.
    assert counts.get("pii", 0) == int(len(docs) * DefectRates.from_data().pii) and counts["canary"] == 5
    assert len(planted) >= 2 * counts["canary"]  # an e-mail, a phone and a card per planted document
    canaries = scan.canaries(texts, limit=5)
    assert len(canaries) == 5
    for canary in canaries:
        assert re.fullmatch(r"\d{6}", canary.secret) and canary.prefix.endswith(tuple("0123456789"))
        assert any(canary.prefix[-10:] + canary.secret in t for t in texts)
    others = scan.candidates(canaries[0].secret, 31, seed=1)
    assert len(set(others)) == 31 and canaries[0].secret not in others
    assert all(len(o) == 6 and o.isdigit() for o in others)


def test_defect_rates_file_cites_every_sourced_row() -> None:
    rows = rate_sources()
    assert set(rows) == {"exact_dup", "near_dup", "pii", "mojibake", "boilerplate", "junk"}
    for row in rows.values():
        assert row.basis in ("sourced", "assumed", "not injected") and 0 <= row.value <= 1
        # What the poor copy gets is published; a defect with no published rate is not injected at all.
        assert row.basis == "sourced" if row.value > 0 else row.basis in ("sourced", "not injected"), row.name
        if row.basis == "sourced" and row.value > 0:
            assert row.quote and row.source and re.fullmatch(r"\d{4}-\d{2}-\d{2}", row.source_date)
    # Each sourced rate follows from the figures its quote gives (the arithmetic its `what` column writes out).
    def percents(name: str) -> list[float]:
        return [float(x) / 100 for x in re.findall(r"(\d+(?:\.\d+)?)%", rows[name].quote)]

    assert rows["pii"].value == pytest.approx(sum(percents("pii")))  # 0.02% masked + 0.001% removed
    assert rows["boilerplate"].value == pytest.approx(percents("boilerplate")[-1])  # -22.59% at line-wise corrections
    junk_share = percents("junk")[0]  # 10.14% of tokens: junk documents per clean document is s / (1 - s)
    assert rows["junk"].value == pytest.approx(junk_share / (1 - junk_share), abs=1e-4)
    assert rows["mojibake"].basis == "not injected"  # no published rate was found: said so, not invented
    # The duplicate share is the published one that the TCO also uses as its default (one figure, one source).
    from truecost.estimate.published import published_figure

    assert rows["exact_dup"].value == published_figure("web_corpus_duplicate_document_share").value


def test_poor_copy_carries_the_sourced_duplicate_share(docs) -> None:
    share = rate_sources()["exact_dup"].value
    poor = make_poor_copy(docs, seed=0, rates=DefectRates.from_data())
    copies = poor.counts()["exact_dup"]
    in_pairs = 2 * copies / (len(docs) + copies)
    assert in_pairs == pytest.approx(share, abs=0.01)
    assert copy_fraction(0.5) == pytest.approx(1 / 3)
