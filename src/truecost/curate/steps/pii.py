"""pii: replace e-mail addresses, phone numbers, IP addresses, card numbers (Luhn), IBANs (mod-97), US social
security numbers and secrets with placeholders that stay consistent inside a document (the same value always gets
the same placeholder). The patterns are `truecost.pii`'s, shared with review."""

from __future__ import annotations

from typing import ClassVar

from truecost.curate.document import Document
from truecost.curate.settings import PiiSettings
from truecost.curate.steps.base import Step, StepStats
from truecost.pii import LABELS, find_pii, iban_valid, luhn_valid

__all__ = ["PiiStep", "iban_valid", "luhn_valid"]


class PiiStep(Step):
    """Finds the chosen kinds (`truecost.pii.find_pii`) and replaces each with a numbered placeholder."""

    name: ClassVar[str] = "pii"

    def __init__(self, cfg: PiiSettings | None = None) -> None:
        self.cfg = cfg or PiiSettings()
        self.kinds = tuple(self.cfg.kinds)

    def scrub(self, text: str, stats: StepStats) -> tuple[str, int]:
        """`text` with every detected item replaced, and how many were replaced."""
        matches = find_pii(text, self.kinds)
        if not matches:
            return text, 0
        numbering: dict[tuple[str, str], str] = {}
        per_label: dict[str, int] = {}
        parts: list[str] = []
        last = 0
        for m in matches:
            label = LABELS[m.kind]
            key = (label, m.value)
            if key not in numbering:
                per_label[label] = per_label.get(label, 0) + 1
                numbering[key] = f"<{label}_{per_label[label]}>" if self.cfg.placeholder == "numbered" else f"<{label}>"
            parts += [text[last:m.start], numbering[key]]
            last = m.end
            stats.changes[m.kind] += 1
        parts.append(text[last:])
        return "".join(parts), len(matches)

    def process(self, doc: Document, stats: StepStats) -> bool:
        text, replaced = self.scrub(doc.text, stats)
        if replaced:
            stats.docs_modified += 1
            doc.text = text
            stats.add_example("replaced", doc, replacements=replaced)
        return True
