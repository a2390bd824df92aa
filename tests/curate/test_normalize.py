"""normalize: real mojibake repaired by ftfy, Unicode forms, invisible/control characters, quotes, boilerplate."""

from __future__ import annotations

from truecost.curate.document import Document
from truecost.curate.settings import NormalizeSettings
from truecost.curate.steps.base import StepStats
from truecost.curate.steps.normalize import NormalizeStep


def norm(text: str, **kw: object) -> str:
    return NormalizeStep(NormalizeSettings(**kw)).normalize_text(text, StepStats("normalize"))  # type: ignore[arg-type]


def test_mojibake_from_a_wrong_decode_is_repaired() -> None:
    original = "Café crème brûlée – “quoted’ and naïve Ångström"
    garbled = original.encode("utf-8").decode("cp1252", errors="replace")  # what a wrong decode really produces
    assert garbled != original
    assert norm(garbled, fix_quotes=False) == original
    assert norm("The Ã¼ber cafÃ©") == "The über café"


def test_unicode_form_choice() -> None:
    decomposed = "Cafe\u0301 \ufb01le"  # e + combining acute; the 'fi' ligature
    assert norm(decomposed) == "Café \ufb01le"  # NFC composes, keeps the ligature
    assert norm(decomposed, unicode_form="NFKC") == "Café file"
    assert norm(decomposed, unicode_form="none") == decomposed


def test_control_invisible_whitespace_quotes_dashes() -> None:
    text = ("He said \u201chello\u201d\u00a0to\u200b the\x07 world\u2011wide \u2018team\u2019.  "
            "\r\n\r\n\r\n\r\nNext\tline  ")
    assert norm(text) == "He said \"hello\" to the world-wide 'team'.\n\nNext\tline"


def test_em_dash_and_zwj_are_kept() -> None:
    assert norm("wait \u2014 this \U0001F469\u200d\U0001F4BB") == "wait \u2014 this \U0001F469\u200d\U0001F4BB"


def test_boilerplate_lines_repeated_across_documents_are_removed() -> None:
    footer = "Subscribe to our newsletter for weekly updates"
    docs = [Document(str(i), f"Article {i} talks about topic number {i} in depth.\n{footer}") for i in range(12)]
    docs.append(Document("only", footer))
    stats = StepStats("normalize")
    step = NormalizeStep(NormalizeSettings(boilerplate_min_docs=10, boilerplate_min_fraction=0.5))
    kept = step.reduce(docs, stats)
    assert [d.id for d in kept] == [str(i) for i in range(12)]
    assert all(footer not in d.text for d in kept)
    assert stats.changes["boilerplate_lines_removed"] == 13
    assert stats.removals[0].id == "only" and stats.removals[0].reason["rule"] == "only_boilerplate"


def test_boilerplate_needs_enough_documents() -> None:
    docs = [Document(str(i), f"Text {i}.\nShared line of three words") for i in range(5)]
    kept = NormalizeStep().reduce(docs, StepStats("normalize"))
    assert all("Shared line" in d.text for d in kept)


def test_legitimate_latin1_text_is_not_repaired() -> None:
    # A character table (as in the iso_8859-1 man page): 'Â' here is meant, not mojibake.
    table = "302   194   C2     Â     LATIN CAPITAL LETTER A WITH CIRCUMFLEX\n303   195   C3     Ã     LATIN CAPITAL"
    assert norm(table) == table
    assert norm("Déjà vu, naïve café") == "Déjà vu, naïve café"
