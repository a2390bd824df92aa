"""How log-probability requests are laid out into forward passes: pure bookkeeping over token ids, no torch.

A request is (token ids, index of its first continuation token). Requests whose context (the tokens before the
continuation) is the same and long enough share one row: the context is fed once, then each continuation's tokens,
each continuation seeing the context and its own earlier tokens only (a tree-shaped attention mask, position ids
restarting after the context). A multiple-choice item's options thus cost one pass over the question, not one per
option. Rows are sorted by length and cut into passes of at most `rows_per_pass` rows, so similar lengths share a
pass and padding stays small (lm-eval orders its requests the same way).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROWS_PER_PASS = 8  # rows per forward pass of a local model (as session.BATCH)
MIN_SHARED_CONTEXT = 4  # a shorter shared context (a lone BOS) saves less than the longer row costs in attention
# A shared row grows with every continuation it holds, and its mask with the square of that: many requests on one
# prompt (a long list of candidate answers) would make one huge row. Past this many tokens a row is split.
MAX_ROW_TOKENS = 1024


@dataclass
class Row:
    """One row of a forward pass: a context fed once, then the continuations that share it."""

    tokens: list[int] = field(default_factory=list)  # the ids fed
    positions: list[int] = field(default_factory=list)  # position id of each fed token
    segments: list[int] = field(default_factory=list)  # -1: context token; j: a token of the row's j-th continuation

    @property
    def shared(self) -> bool:
        """Whether more than one continuation shares the context (the row needs the tree-shaped mask)."""
        return max(self.segments, default=-1) > 0


@dataclass
class Pass:
    """Rows scored in one forward pass, and which (row, column) predicts each continuation token of each request."""

    rows: list[Row]
    reads: dict[int, list[tuple[int, int, int]]]  # request index -> [(row, column, target token id)] in token order

    @property
    def width(self) -> int:
        return max(len(r.tokens) for r in self.rows)


def _groups(encoded: list[tuple[list[int], int]], max_row_tokens: int = MAX_ROW_TOKENS
            ) -> list[tuple[list[int], list[int]]]:
    """(context ids, request indices) per row, in first-seen order; requests with nothing to predict are left out.
    A row holds continuations while it stays within `max_row_tokens` (one always fits, however long)."""
    rows: dict[object, list[tuple[list[int], list[int]]]] = {}
    for i, (ids, first) in enumerate(encoded):
        start = max(first, 1)  # the first token of a sequence has nothing before it to be predicted from
        if start >= len(ids):
            continue
        context = ids[:start]
        key: object = tuple(context) if len(context) >= MIN_SHARED_CONTEXT else ("alone", i)
        chunks = rows.setdefault(key, [])
        tail = len(ids) - start - 1  # tokens this request adds to a row: its continuation but the last
        if not chunks or _row_tokens(chunks[-1], encoded) + tail > max_row_tokens:
            chunks.append((context, []))
        chunks[-1][1].append(i)
    return [chunk for chunks in rows.values() for chunk in chunks]


def _row_tokens(chunk: tuple[list[int], list[int]], encoded: list[tuple[list[int], int]]) -> int:
    """Tokens a row of this context and these requests feeds."""
    context, members = chunk
    return len(context) + sum(len(encoded[i][0]) - len(context) - 1 for i in members)


def _row(context: list[int], members: list[int], encoded: list[tuple[list[int], int]]
         ) -> tuple[Row, dict[int, list[tuple[int, int]]]]:
    """One row and, per member request, the (column, target id) that predict its continuation tokens."""
    row = Row(list(context), list(range(len(context))), [-1] * len(context))
    reads: dict[int, list[tuple[int, int]]] = {}
    for j, i in enumerate(members):
        ids = encoded[i][0]
        start = len(context)
        tail = ids[start:-1]  # the last token predicts nothing: it is not fed
        column = len(row.tokens)
        # The first continuation token is predicted by the context's last token, the rest by the tail's tokens.
        reads[i] = [(start - 1, ids[start])] + [(column + k, ids[start + 1 + k]) for k in range(len(tail))]
        row.tokens += tail
        row.positions += range(start, start + len(tail))
        row.segments += [j] * len(tail)
    return row, reads


def plan_passes(encoded: list[tuple[list[int], int]], rows_per_pass: int = ROWS_PER_PASS,
                max_row_tokens: int = MAX_ROW_TOKENS) -> list[Pass]:
    """Rows for every request, longest first, cut into passes of at most `rows_per_pass` rows."""
    built = [_row(context, members, encoded) for context, members in _groups(encoded, max_row_tokens)]
    built.sort(key=lambda rr: -len(rr[0].tokens))
    passes = []
    for lo in range(0, len(built), rows_per_pass):
        chunk = built[lo:lo + rows_per_pass]
        reads = {i: [(r, col, tid) for col, tid in cols] for r, (_, per) in enumerate(chunk)
                 for i, cols in per.items()}
        passes.append(Pass([row for row, _ in chunk], reads))
    return passes
