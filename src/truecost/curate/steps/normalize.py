"""normalize: repair mojibake, pick a Unicode form, clean whitespace/control/invisible characters, unify quotes and
dashes (per document), then drop boilerplate lines repeated across many documents (whole corpus)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import ClassVar

from truecost.curate.document import WORD_RE, Document
from truecost.curate.settings import NormalizeSettings
from truecost.curate.steps.base import Step, StepStats

# Unicode spaces (no-break, en/em/thin..., ideographic) become a plain space.
_SPACES = dict.fromkeys([0x00A0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000], " ")
# C0/C1 controls except tab and newline; CR is handled as a line break before this table applies.
_CONTROLS = dict.fromkeys([c for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)] if c not in (0x09, 0x0A)])
# Invisible characters that carry no meaning in training text (soft hyphen, zero-width space, word joiner, BOM,
# Mongolian vowel separator, bidi embeddings/isolates). ZWJ/ZWNJ are kept: they change how some scripts render.
_INVISIBLE = dict.fromkeys([0x00AD, 0x200B, 0x2060, 0xFEFF, 0x180E, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_QUOTES = {0x2018: "'", 0x2019: "'", 0x201A: "'", 0x201B: "'", 0x2032: "'", 0x201C: '"', 0x201D: '"', 0x201E: '"',
           0x201F: '"', 0x2033: '"', 0x00AB: '"', 0x00BB: '"'}
# Hyphen look-alikes become ASCII '-'; en and em dashes are punctuation with their own meaning and stay.
_DASHES = {0x2010: "-", 0x2011: "-", 0x2012: "-", 0x2212: "-", 0xFE63: "-", 0xFF0D: "-"}
_TRAILING_WS_RE = re.compile(r"[ \t]+$", re.MULTILINE)
_BLANK_LINES_RE = re.compile(r"\n{3,}")


def _line_key(line: str) -> str:
    return " ".join(line.split()).lower()


class NormalizeStep(Step):
    """Per-document text repair (map), then corpus-wide boilerplate line removal (reduce)."""

    name: ClassVar[str] = "normalize"
    has_reduce: ClassVar[bool] = True

    def __init__(self, cfg: NormalizeSettings | None = None) -> None:
        self.cfg = cfg or NormalizeSettings()
        table: dict[int, str | None] = {}
        if self.cfg.fix_whitespace:
            table.update(_SPACES)
        if self.cfg.remove_control:
            table.update(_CONTROLS)
        if self.cfg.remove_invisible:
            table.update(_INVISIBLE)
        if self.cfg.fix_quotes:
            table.update(_QUOTES)
        if self.cfg.fix_dashes:
            table.update(_DASHES)
        self.table = table

    def normalize_text(self, text: str, stats: StepStats) -> str:
        """The repaired text; counts what kind of change was made in `stats.changes`."""
        c = self.cfg
        # Pure ASCII cannot hold mojibake or non-ASCII look-alikes; skip the costly parts for it.
        ascii_only = text.isascii()
        if c.fix_mojibake and not ascii_only:
            import ftfy

            fixed = ftfy.fix_encoding(text)
            if fixed != text:
                stats.changes["mojibake_fixed"] += 1
                text = fixed
        if c.unicode_form != "none" and not ascii_only:
            form = c.unicode_form
            if not unicodedata.is_normalized(form, text):
                stats.changes[f"unicode_{form.lower()}"] += 1
                text = unicodedata.normalize(form, text)
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            stats.changes["line_endings"] += 1
        if self.table:
            translated = text.translate(self.table)
            if translated != text:
                stats.changes["characters_replaced"] += 1
                text = translated
        if c.fix_whitespace:
            cleaned = _BLANK_LINES_RE.sub("\n\n", _TRAILING_WS_RE.sub("", text)).strip()
            if cleaned != text:
                stats.changes["whitespace"] += 1
                text = cleaned
        return text

    def process(self, doc: Document, stats: StepStats) -> bool:
        text = self.normalize_text(doc.text, stats)
        if text != doc.text:
            stats.docs_modified += 1
            doc.text = text
        if not text:
            stats.remove(doc, "empty_after_normalize", 0, 1)
            return False
        return True

    def reduce(self, docs: list[Document], stats: StepStats) -> list[Document]:
        c = self.cfg
        if not c.boilerplate or len(docs) < c.boilerplate_min_docs:
            return docs
        min_docs = max(c.boilerplate_min_docs, int(c.boilerplate_min_fraction * len(docs) + 0.999999))
        doc_freq: Counter[str] = Counter()
        for doc in docs:
            keys = {_line_key(line) for line in doc.text.split("\n")}
            doc_freq.update(k for k in keys if len(WORD_RE.findall(k)) >= c.boilerplate_min_words)
        boiler = {k for k, n in doc_freq.items() if n >= min_docs}
        if not boiler:
            return docs
        kept_docs = []
        for doc in docs:
            lines = doc.text.split("\n")
            kept = [line for line in lines if _line_key(line) not in boiler]
            if len(kept) == len(lines):
                kept_docs.append(doc)
                continue
            stats.changes["boilerplate_lines_removed"] += len(lines) - len(kept)
            stats.docs_modified += 1
            doc.text = "\n".join(kept).strip()
            if doc.text:
                kept_docs.append(doc)
            else:
                stats.remove(doc, "only_boilerplate", len(lines), min_docs)
        stats.changes["boilerplate_distinct_lines"] += len(boiler)
        return kept_docs
