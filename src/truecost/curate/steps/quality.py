"""Quality filters from the papers: Gopher quality and repetition, C4, FineWeb, with their published thresholds.

Written from the papers' definitions (not from any library's code):
- Gopher: Rae et al. 2021, "Scaling Language Models", Appendix A.1.1 and Table A1.
- C4: Raffel et al. 2020, "Exploring the Limits of Transfer Learning", section 2.2 (constants as in the TFDS builder).
- FineWeb: Penedo et al. 2024, "The FineWeb Datasets", section 3.6 (the three custom filters).

Every rule reads the document's one shared word split (`Document.words`: `\\w+` runs), never its own tokeniser.
Speed comes from that, from numpy over hashed words for the n-gram rules, and from cheap rules running first.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, ClassVar

import numpy as np

from truecost.curate.dedup.hashing import word_hashes
from truecost.curate.document import Document
from truecost.curate.settings import C4Settings, FineWebSettings, GopherSettings, QualitySettings
from truecost.curate.steps.base import Step, StepStats

# Gopher's stop-word list (paper, A.1.1): a document must contain at least two of these.
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
_STOP_RE = re.compile(r"\b(?:" + "|".join(GOPHER_STOP_WORDS) + r")\b", re.IGNORECASE)
_BULLETS = ("•", "-", "*", "‣", "◦", "▪", "●", "·", "–")
_ELLIPSES = ("...", "…")

# C4 (TFDS builder constants): line end marks and policy phrases.
_C4_END_MARKS = (".", "?", "!", '"')
_C4_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
_C4_CITATION_RE = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
# A sentence ends with . ! or ? (possibly repeated, possibly followed by closing quotes/brackets) then space or end.
_SENTENCE_END_RE = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s|$)")

# FineWeb: "ending with punctuation" (the paper's terminal marks, plus closing quotes and ellipsis).
_FINEWEB_END_MARKS = (".", "!", "?", '"', "'", "\u201d", "\u2019", "\u2026", ")", ":", ";")

_MIX = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio odd constant: spreads combined n-gram hashes over 64 bits


def _dup_fraction(items: list[str]) -> tuple[float, float]:
    """(fraction of items that repeat an earlier item, fraction of characters in those repeats)."""
    if not items:
        return 0.0, 0.0
    counts = Counter(items)
    dup_items = len(items) - len(counts)
    if dup_items == 0:
        return 0.0, 0.0
    dup_chars = sum(len(item) * (c - 1) for item, c in counts.items() if c > 1)
    total_chars = sum(len(item) for item in items)
    return dup_items / len(items), dup_chars / total_chars if total_chars else 0.0


class GopherQuality:
    """Gopher's quality heuristics: length, mean word length, symbol ratios, bullets, ellipses, alpha, stop words."""

    name = "gopher_quality"

    def __init__(self, cfg: GopherSettings) -> None:
        self.cfg = cfg

    def check(self, doc: Document, stats: StepStats) -> bool:
        c = self.cfg
        text, words = doc.text, doc.words
        n = len(words)
        if n < c.min_words or n > c.max_words:
            stats.remove(doc, "gopher_word_count", n, [c.min_words, c.max_words])
            return False
        mean_len = sum(map(len, words)) / n
        if mean_len < c.min_mean_word_length or mean_len > c.max_mean_word_length:
            stats.remove(doc, "gopher_mean_word_length", mean_len, [c.min_mean_word_length, c.max_mean_word_length])
            return False
        hash_ratio = text.count("#") / n
        if hash_ratio > c.max_symbol_word_ratio:
            stats.remove(doc, "gopher_hash_word_ratio", hash_ratio, c.max_symbol_word_ratio)
            return False
        ellipsis_ratio = (text.count("...") + text.count("…")) / n
        if ellipsis_ratio > c.max_symbol_word_ratio:
            stats.remove(doc, "gopher_ellipsis_word_ratio", ellipsis_ratio, c.max_symbol_word_ratio)
            return False
        lines = [line.strip() for line in text.split("\n")]
        lines = [line for line in lines if line]
        if lines:
            bullet = sum(1 for line in lines if line.startswith(_BULLETS)) / len(lines)
            if bullet > c.max_bullet_lines_ratio:
                stats.remove(doc, "gopher_bullet_lines_ratio", bullet, c.max_bullet_lines_ratio)
                return False
            ell = sum(1 for line in lines if line.endswith(_ELLIPSES)) / len(lines)
            if ell > c.max_ellipsis_lines_ratio:
                stats.remove(doc, "gopher_ellipsis_lines_ratio", ell, c.max_ellipsis_lines_ratio)
                return False
        # A \w+ word without a letter is all digits, or digits and underscores (rare: only scanned when present).
        no_alpha = sum(map(str.isdigit, words))
        if "_" in text:
            for w in words:
                if "_" in w:
                    rest = w.replace("_", "")
                    no_alpha += not rest or rest.isdigit()
        alpha = 1.0 - no_alpha / n
        if alpha < c.min_alpha_words_ratio:
            stats.remove(doc, "gopher_alpha_words_ratio", alpha, c.min_alpha_words_ratio)
            return False
        if c.min_stop_words > 0:
            found = 0
            for _ in _STOP_RE.finditer(text):
                found += 1
                if found >= c.min_stop_words:
                    break
            if found < c.min_stop_words:
                stats.remove(doc, "gopher_stop_words", found, c.min_stop_words)
                return False
        return True


class GopherRepetition:
    """Gopher's repetition heuristics: duplicate lines/paragraphs, top n-grams (2-4), duplicate n-grams (5-10)."""

    name = "gopher_repetition"

    def __init__(self, cfg: GopherSettings) -> None:
        self.cfg = cfg

    def check(self, doc: Document, stats: StepStats) -> bool:
        c = self.cfg
        text = doc.text
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text)]
        paragraphs = [p for p in paragraphs if p]
        frac, char_frac = _dup_fraction(paragraphs)
        if frac > c.max_dup_paragraph_fraction:
            stats.remove(doc, "gopher_dup_paragraph_fraction", frac, c.max_dup_paragraph_fraction)
            return False
        if char_frac > c.max_dup_paragraph_char_fraction:
            stats.remove(doc, "gopher_dup_paragraph_char_fraction", char_frac, c.max_dup_paragraph_char_fraction)
            return False
        lines = [line.strip() for line in text.split("\n")]
        lines = [line for line in lines if line]
        frac, char_frac = _dup_fraction(lines)
        if frac > c.max_dup_line_fraction:
            stats.remove(doc, "gopher_dup_line_fraction", frac, c.max_dup_line_fraction)
            return False
        if char_frac > c.max_dup_line_char_fraction:
            stats.remove(doc, "gopher_dup_line_char_fraction", char_frac, c.max_dup_line_char_fraction)
            return False
        return self._check_ngrams(doc, stats)

    def _check_ngrams(self, doc: Document, stats: StepStats) -> bool:
        c = self.cfg
        words = doc.words
        if len(words) < 2:
            return True
        hashes = word_hashes(words, lower=False)  # n-grams are case-sensitive, as in the paper
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        total_chars = int(lengths.sum())
        if total_chars == 0:
            return True
        csum = np.concatenate(([0], np.cumsum(lengths)))
        # n-gram hashes are built incrementally: grams[n] from grams[n-1] and the next word's hash.
        grams = hashes
        size = 1
        top_limits = dict(c.max_top_ngram_char_fraction)
        dup_limits = sorted(c.max_dup_ngram_char_fraction.items())
        last_n = max([*top_limits, *(n for n, _ in dup_limits), 1])
        dup_done = False
        for n in range(2, min(last_n, len(words)) + 1):
            grams = grams[:-1] * _MIX ^ hashes[n - 1:]
            size = n
            if n in top_limits and not self._top_ngram_ok(doc, stats, grams, n, top_limits[n], csum, total_chars):
                return False
            if dup_done or n not in c.max_dup_ngram_char_fraction:
                continue
            result = self._dup_ngram_ok(doc, stats, grams, n, dup_limits, lengths, total_chars)
            if result is False:
                return False
            dup_done = result is None
            if dup_done and size >= max(top_limits, default=0):
                break
        return True

    @staticmethod
    def _top_ngram_ok(doc: Document, stats: StepStats, grams: np.ndarray, n: int, limit: float, csum: np.ndarray,
                      total_chars: int) -> bool:
        ordered = np.sort(grams)
        # Run lengths of equal hashes in sorted order are the n-gram counts.
        edges = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
        runs = np.diff(np.concatenate(([0], edges, [len(ordered)])))
        top = int(runs.max())
        if top < 2:
            return True
        starts = np.concatenate(([0], edges))
        top_values = ordered[starts[runs == top]]
        positions = np.flatnonzero(grams == top_values[0] if len(top_values) == 1 else np.isin(grams, top_values))
        # Among the most frequent n-grams, the one with the most characters (deterministic under ties).
        gram_chars = int((csum[positions + n] - csum[positions]).max())
        value = float(top * gram_chars) / total_chars
        if value > limit:
            stats.remove(doc, f"gopher_top_{n}gram_char_fraction", value, limit)
            return False
        return True

    @staticmethod
    def _dup_ngram_ok(doc: Document, stats: StepStats, grams: np.ndarray, n: int,
                      dup_limits: list[tuple[int, float]], lengths: np.ndarray, total_chars: int) -> bool | None:
        """False: removed. None: passes, and no longer n-gram can fail. True: passes."""
        order = np.argsort(grams, kind="stable")
        same = grams[order[1:]] == grams[order[:-1]]
        if not same.any():
            return None  # no repeated n-gram, so no repeated longer one either
        # Stable order puts each n-gram's first occurrence first in its run; the rest are repeats, whose words are
        # covered once even where they overlap.
        starts = order[1:][same]
        delta = np.zeros(len(lengths) + 1, dtype=np.int64)
        delta[starts] += 1
        delta[starts + n] -= 1
        covered = np.cumsum(delta[:-1]) > 0
        value = float(lengths[covered].sum()) / total_chars
        limit = dict(dup_limits)[n]
        if value > limit:
            stats.remove(doc, f"gopher_dup_{n}gram_char_fraction", value, limit)
            return False
        # Words covered by repeated (n+1)-grams are a subset of those of n-grams: once this fraction is within
        # every later limit, no later n can fail.
        return None if all(value <= later for m, later in dup_limits if m > n) else True


class C4Rules:
    """C4's rules: drop lines (no end mark, too few words, javascript, policy text, huge words), then whole pages."""

    name = "c4"

    def __init__(self, cfg: C4Settings) -> None:
        self.cfg = cfg

    def check_page(self, doc: Document, stats: StepStats) -> bool:
        """The page-level rules (lorem ipsum, curly bracket): substring tests, so they run before all others."""
        c = self.cfg
        text = doc.text
        if c.filter_curly_bracket and "{" in text:
            stats.remove(doc, "c4_curly_bracket", text.count("{"), 0)
            return False
        if c.filter_lorem_ipsum and "lorem ipsum" in text.lower():
            stats.remove(doc, "c4_lorem_ipsum", "lorem ipsum", "absent")
            return False
        return True

    def check(self, doc: Document, stats: StepStats) -> bool:
        """The line rules, then the sentence count (the page-level rules are `check_page`)."""
        c = self.cfg
        text = doc.text
        kept: list[str] = []
        dropped = 0
        for raw in text.split("\n"):
            line = raw.strip()
            if not line:
                continue
            if c.remove_citations:
                line = _C4_CITATION_RE.sub("", line)
            low = line.lower()
            words = line.split()
            if (len(words) < c.min_words_per_line
                    or (c.require_end_mark and (not line.endswith(_C4_END_MARKS) or line.endswith("...")))
                    or (c.filter_javascript and "javascript" in low)
                    or (c.filter_policy and any(p in low for p in _C4_POLICY))
                    or any(len(w) > c.max_word_length for w in words)):
                dropped += 1
                continue
            kept.append(line)
        new_text = "\n".join(kept)
        sentences = len(_SENTENCE_END_RE.findall(new_text))
        if sentences < c.min_sentences:
            stats.remove(doc, "c4_sentences", sentences, c.min_sentences, lines_dropped=dropped)
            return False
        if new_text != text:
            stats.changes["c4_lines_dropped"] += dropped
            stats.docs_modified += 1
            doc.text = new_text
        return True


class FineWebRules:
    """FineWeb's three custom filters: lines ending in punctuation, characters in duplicated lines, short lines."""

    name = "fineweb"

    def __init__(self, cfg: FineWebSettings) -> None:
        self.cfg = cfg

    def check(self, doc: Document, stats: StepStats) -> bool:
        c = self.cfg
        lines = [line.strip() for line in doc.text.split("\n")]
        lines = [line for line in lines if line]
        if not lines:
            stats.remove(doc, "fineweb_no_lines", 0, 1)
            return False
        punct = sum(1 for line in lines if line.endswith(_FINEWEB_END_MARKS)) / len(lines)
        if punct <= c.min_punct_line_fraction:
            stats.remove(doc, "fineweb_punct_line_fraction", punct, c.min_punct_line_fraction)
            return False
        _, dup_chars = _dup_fraction(lines)
        if dup_chars >= c.max_dup_line_char_fraction:
            stats.remove(doc, "fineweb_dup_line_char_fraction", dup_chars, c.max_dup_line_char_fraction)
            return False
        short = sum(1 for line in lines if len(line) < c.short_line_chars) / len(lines)
        if short >= c.max_short_line_fraction:
            stats.remove(doc, "fineweb_short_line_fraction", short, c.max_short_line_fraction)
            return False
        return True


_RULES: dict[str, Any] = {"gopher_quality": (GopherQuality, "gopher"),
                          "gopher_repetition": (GopherRepetition, "gopher"),
                          "c4": (C4Rules, "c4"), "fineweb": (FineWebRules, "fineweb")}


class QualityStep(Step):
    """Runs the chosen rule sets in order; the first failing rule removes the document and is reported.

    C4's page-level rules (a `{`, "lorem ipsum") are substring tests on the original text, so they run first:
    a code page is then dropped before it is even tokenised. Which documents are removed does not depend on this
    order (every rule but C4's line filter reads the original text, and that one runs after the Gopher rules);
    only the reason named for a document failing several rules does.
    """

    name: ClassVar[str] = "quality"

    def __init__(self, cfg: QualitySettings | None = None) -> None:
        self.cfg = cfg or QualitySettings()
        self.rules = [_RULES[r][0](getattr(self.cfg, _RULES[r][1])) for r in self.cfg.rules]
        self.checks = [rule.check_page for rule in self.rules if isinstance(rule, C4Rules)]
        self.checks += [rule.check for rule in self.rules]

    def process(self, doc: Document, stats: StepStats) -> bool:
        return all(check(doc, stats) for check in self.checks)
