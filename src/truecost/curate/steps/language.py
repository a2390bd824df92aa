"""language: keep documents in the chosen languages, identified offline by py3langid (its model ships in the wheel)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

from truecost.curate.document import Document
from truecost.curate.settings import LanguageSettings
from truecost.curate.steps.base import Step, StepStats
from truecost.errors import MissingExtra


@lru_cache(maxsize=1)
def _identifier() -> Any:
    """py3langid's naive Bayes identifier with probabilities normalised to [0, 1] (loaded once per process)."""
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError as exc:
        raise MissingExtra("py3langid", "curate", "offline language identification") from exc
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str, max_chars: int = 2000) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the first `max_chars` characters of `text`."""
    lang, score = _identifier().classify(text[:max_chars])
    return str(lang), float(score)


class LanguageStep(Step):
    """Removes documents whose top language is not wanted or whose probability is below `min_score`."""

    name: ClassVar[str] = "language"

    def __init__(self, cfg: LanguageSettings | None = None) -> None:
        self.cfg = cfg or LanguageSettings()
        self.wanted = set(self.cfg.languages)

    def process(self, doc: Document, stats: StepStats) -> bool:
        lang, score = identify(doc.text, self.cfg.max_chars)
        stats.changes[f"lang_{lang}"] += 1
        if self.wanted and lang not in self.wanted:
            stats.remove(doc, "language_not_wanted", lang, sorted(self.wanted), score=round(score, 4))
            return False
        if score < self.cfg.min_score:
            stats.remove(doc, "language_score", score, self.cfg.min_score, language=lang)
            return False
        return True
