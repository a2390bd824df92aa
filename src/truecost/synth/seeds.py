"""Seeds: the documents (for grounded Q/A) or tasks (for self-instruct and paraphrase) generation starts from."""

from __future__ import annotations

import random
from pathlib import Path

from truecost.errors import UserError
from truecost.synth.files import Row, read_rows

BUILTIN_STDLIB = "builtin:stdlib"
"""Seed documents that need no files: the Python standard library's docstrings (as the demo's corpus)."""


def stdlib_seeds(min_words: int = 40) -> list[Row]:
    """The standard library's docstrings of at least `min_words` words, as seed documents."""
    from truecost.demo.corpus import stdlib_documents

    return [Row(doc.id, doc.text) for doc in stdlib_documents(min_words=min_words)]


def load_seeds(sources: list[str], *, task: str, limit: int | None = None, seed: int = 0) -> list[Row]:
    """Seed rows from files, folders or `builtin:stdlib`; ids made unique; at most `limit`, sampled with `seed`
    (in their original order) so a small run still spreads over the whole seed set."""
    if not sources:
        raise UserError("no seeds given: name a seed file or folder, or builtin:stdlib")
    rows: list[Row] = []
    for source in sources:
        if source == BUILTIN_STDLIB:
            rows.extend(stdlib_seeds())
        elif source.startswith("builtin:"):
            raise UserError(f"unknown built-in seed set {source!r}; the built-in one is {BUILTIN_STDLIB}")
        else:
            # Task seeds in a plain text file are one instruction per line; documents are one per file.
            rows.extend(read_rows(Path(source), "seed file", lines_are_rows=task != "qa"))
    if not rows:
        raise UserError(f"the seeds ({', '.join(sources)}) hold no text")
    rows = _unique_ids(rows)
    if limit is not None and limit < len(rows):
        picked = sorted(random.Random(seed).sample(range(len(rows)), limit))
        rows = [rows[i] for i in picked]
    return rows


def _unique_ids(rows: list[Row]) -> list[Row]:
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        n = seen.get(row.id, 0)
        seen[row.id] = n + 1
        out.append(row if n == 0 else Row(f"{row.id}~{n + 1}", row.prompt, row.response))
    return out
