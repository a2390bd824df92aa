"""language: offline identification keeps wanted languages and explains removals."""

from __future__ import annotations

from truecost.curate.document import Document
from truecost.curate.settings import LanguageSettings
from truecost.curate.steps.base import StepStats
from truecost.curate.steps.language import LanguageStep, identify

EN = "The quick brown fox jumps over the lazy dog while the farmer watches from the old wooden gate."
FR = "Le renard brun rapide saute par-dessus le chien paresseux pendant que le fermier regarde depuis la porte."
DE = "Der schnelle braune Fuchs springt über den faulen Hund, während der Bauer vom alten Holztor aus zusieht."


def test_identify_known_languages() -> None:
    assert identify(EN)[0] == "en"
    assert identify(FR)[0] == "fr"
    assert identify(DE)[0] == "de"


def test_step_keeps_wanted_and_reports_the_rest() -> None:
    stats = StepStats("language")
    docs = [Document("en", EN), Document("fr", FR), Document("de", DE)]
    kept = LanguageStep(LanguageSettings(languages=["en", "de"])).map(docs, stats)
    assert [d.id for d in kept] == ["en", "de"]
    (removal,) = stats.removals
    assert removal.id == "fr"
    assert removal.reason["rule"] == "language_not_wanted" and removal.reason["value"] == "fr"
    assert removal.reason["threshold"] == ["de", "en"]


def test_low_score_is_removed() -> None:
    stats = StepStats("language")
    kept = LanguageStep(LanguageSettings(languages=["en"], min_score=0.999999)).map([Document("x", "ok 123")], stats)
    assert kept == [] and stats.removals[0].reason["rule"] in ("language_score", "language_not_wanted")
