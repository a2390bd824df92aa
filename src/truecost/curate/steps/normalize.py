"""normalize: repair mojibake, pick a Unicode form, clean whitespace/control/invisible characters, unify quotes and
dashes (per document), then drop boilerplate lines repeated across many documents (whole corpus)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import TYPE_CHECKING, ClassVar

from truecost.curate.document import WORD_RE, Document
from truecost.curate.settings import NormalizeSettings
from truecost.curate.steps.base import Step, StepStats

if TYPE_CHECKING:
    import numpy as np

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


# UTF-8 read as Latin-1/Windows-1252 leaves a lead-byte letter (Â Ã â Ð ...) followed by a continuation-byte
# character; text without such a pair has no mojibake of that kind, and skips ftfy's much slower analysis.
_MOJIBAKE_HINT_RE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e"
                               "\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039"
                               "\u203a\u20ac\u2122]")
# In ASCII text only C0 controls (other than tab/newline) and DEL need the translation table.
_ASCII_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def _line_key(line: str) -> str:
    return line.strip().lower()


class NormalizeStep(Step):
    """Per-document text repair (map), then corpus-wide boilerplate line removal (reduce)."""

    name: ClassVar[str] = "normalize"

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
        if c.fix_mojibake and not ascii_only and _MOJIBAKE_HINT_RE.search(text):
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
        if self.table and (not ascii_only or _ASCII_CONTROL_RE.search(text)):
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
        """Boilerplate removal over documents held in memory (the pipeline runs the same pieces per shard)."""
        counts = LineCounts()
        for doc in docs:
            counts.add(doc.text)
        lines = choose_boilerplate(counts.frequent(self.cfg, len(docs)), len(docs), self.cfg)
        return strip_boilerplate(docs, lines, stats)


def line_keys(text: str) -> set[str]:
    """The distinct non-empty lines of a document, as boilerplate is counted: stripped and lower-cased."""
    keys = {line.strip() for line in text.lower().split("\n")}
    keys.discard("")
    return keys


def line_hash(key: str) -> int:
    import xxhash

    return int(xxhash.xxh3_64_intdigest(key.encode("utf-8", "surrogatepass")))


class LineCounts:
    """In how many documents of one shard each line appears (boilerplate is decided from all shards' counts)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.docs = 0

    def add(self, text: str) -> None:
        self.counts.update(line_keys(text))
        self.docs += 1

    def frequent(self, cfg: NormalizeSettings, docs: int | None = None) -> dict[str, int]:
        """Lines in at least `boilerplate_min_fraction` of this shard's documents (and long enough). A line in
        that share of the whole corpus is in that share of at least one shard, so these are all candidates."""
        needed = max(1, cfg.boilerplate_min_fraction * (self.docs if docs is None else docs))
        return {k: n for k, n in self.counts.items()
                if n >= needed and len(WORD_RE.findall(k)) >= cfg.boilerplate_min_words}

    def hashed(self) -> tuple[np.ndarray, np.ndarray]:
        """(line hashes ascending, document counts): how other shards' candidates are counted here."""
        import numpy as np

        hashes = np.array([line_hash(k) for k in self.counts], dtype=np.uint64)
        counts = np.array(list(self.counts.values()), dtype=np.int64)
        order = np.argsort(hashes)
        return hashes[order], counts[order]


def min_boilerplate_docs(cfg: NormalizeSettings, docs: int) -> int:
    """Documents a line must appear in to be boilerplate, for a corpus of `docs` documents."""
    return max(cfg.boilerplate_min_docs, int(cfg.boilerplate_min_fraction * docs + 0.999999))


def choose_boilerplate(corpus_counts: dict[str, int], docs: int, cfg: NormalizeSettings) -> set[str]:
    """The boilerplate lines, from corpus-wide document counts of the candidate lines."""
    if not cfg.boilerplate or docs < cfg.boilerplate_min_docs:
        return set()
    needed = min_boilerplate_docs(cfg, docs)
    return {k for k, n in corpus_counts.items() if n >= needed}


def strip_boilerplate(docs: list[Document], boiler: set[str], stats: StepStats) -> list[Document]:
    """Documents without their boilerplate lines (a document left empty is removed)."""
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
            stats.remove(doc, "only_boilerplate", len(lines), len(boiler))
    return kept_docs
