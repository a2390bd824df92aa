"""The one document type every curate step reads and writes, with its word tokenisation cached."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# One fast regex splitter shared by every rule and by dedup: Unicode letters, digits and underscore runs.
# Punctuation is not a word; rules that need punctuation (hashes, ellipses, line endings) read `text`.
WORD_RE = re.compile(r"\w+")
# For pure-ASCII text (most text) the same words, found ~20% faster by an explicit ASCII class.
_ASCII_WORD_RE = re.compile(r"[A-Za-z0-9_]+")


# ASCII bytes that are not word characters, mapped to a space (for the normalised form below).
_ASCII_NON_WORD_TO_SPACE = bytes(c if chr(c).isalnum() or c == 0x5F else 0x20 for c in range(128)) + bytes(
    range(128, 256))


def split_words(text: str) -> list[str]:
    """The words of `text`, as every curate rule counts them."""
    return (_ASCII_WORD_RE if text.isascii() else WORD_RE).findall(text)


def normalise_words(words: list[str]) -> bytes:
    """Words lower-cased and joined by single spaces, as UTF-8: the form exact and near dedup both hash."""
    return " ".join(words).lower().encode("utf-8", "surrogatepass")


def normalised_text(text: str) -> bytes:
    """`normalise_words(split_words(text))`; for ASCII text without building a string per word (~4x faster)."""
    if text.isascii():
        # Lower-casing ASCII never turns a word character into another kind, so it may come before the split.
        return b" ".join(text.lower().encode("ascii").translate(_ASCII_NON_WORD_TO_SPACE).split())
    return normalise_words(split_words(text))


@dataclass(eq=False)
class Document:
    """One input record: its id, its text, and the rest of the record (`meta`) so outputs keep the user's fields.

    `words` is computed once per text and cached; assigning a new `text` (normalize, pii) invalidates it.
    `pos` is where the record sits in its input shard, so later passes and the writer find it again.
    """

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    pos: int = -1  # position of the record in its input shard (line, row or file number); -1 when not read
    _words: list[str] | None = field(default=None, init=False, repr=False)
    _words_of: str | None = field(default=None, init=False, repr=False)
    _normalised: bytes | None = field(default=None, init=False, repr=False)
    _normalised_of: str | None = field(default=None, init=False, repr=False)

    @property
    def words(self) -> list[str]:
        """Word tokens of the current text (computed once, shared by all steps)."""
        # Identity check, not equality: cheap, and any reassignment of `text` gives a new object.
        if self._words is None or self._words_of is not self.text:
            self._words = split_words(self.text)
            self._words_of = self.text
        return self._words

    @property
    def normalised_words(self) -> bytes:
        """The words lower-cased, joined by single spaces, UTF-8 (`normalise_words`): what dedup hashes. Computed
        once per text, from the cached `words` when a step already split them."""
        if self._normalised is None or self._normalised_of is not self.text:
            if self._words is not None and self._words_of is self.text:
                self._normalised = normalise_words(self._words)
            else:
                self._normalised = normalised_text(self.text)
            self._normalised_of = self.text
        return self._normalised

    @property
    def n_bytes(self) -> int:
        """UTF-8 size of the current text."""
        return len(self.text.encode("utf-8", "surrogatepass"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Document):
            return NotImplemented
        return self.id == other.id and self.text == other.text and self.meta == other.meta

    __hash__ = None  # type: ignore[assignment]
