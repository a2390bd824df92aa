"""Reading one shard as a stream of batches: JSONL (plain, .gz, .zst), Parquet, or a folder of text files.

Bad records become removals of step "input" (counted and reported, never fatal). Every record has a position
`pos` in its shard (JSONL: line number; Parquet: row; folder: file), which is how later passes find it again.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from truecost.curate.document import Document
from truecost.curate.sources import TEXT_SUFFIXES, Shard, filesystem, open_file
from truecost.curate.steps.base import Removal
from truecost.errors import UserError

BATCH_DOCS = 1000
BATCH_BYTES = 8 << 20  # a batch ends at whichever comes first: memory stays at a few batches


@dataclass
class Batch:
    """Good documents (with `pos`), bad records, and which documents must be re-serialised when written
    (their text was repaired on reading)."""

    docs: list[Document] = field(default_factory=list)
    bad: list[Removal] = field(default_factory=list)
    dirty: set[int] = field(default_factory=set)
    bytes_read: int = 0
    records: int = 0  # records seen, good or bad (sampled-out ones included)
    sampled_out: int = 0
    sampled_out_bytes: int = 0

    @property
    def size(self) -> int:
        return sum(len(d.text) for d in self.docs)


class _Checks:
    """Turns raw records into Documents, applying the checks every format shares."""

    def __init__(self, shard: Shard, text_field: str, id_field: str, max_doc_bytes: int,
                 keep: Any = None) -> None:
        self.shard = shard
        self.text_field = text_field
        self.id_field = id_field
        self.max_doc_bytes = max_doc_bytes
        self.keep = keep  # optional id -> bool (a dry run's sample)
        self.seen: set[str] = set()

    def bad(self, batch: Batch, doc_id: str, rule: str, value: Any = None, threshold: Any = None,
            **extra: Any) -> None:
        batch.bad.append(Removal(doc_id, "input", {"rule": rule, "value": value, "threshold": threshold,
                                                   **extra}))

    def unique_id(self, batch: Batch, doc_id: str) -> str:
        # Ids must be unique (within a shard) for removed.jsonl / duplicates.jsonl to mean anything.
        if doc_id not in self.seen:
            self.seen.add(doc_id)
            return doc_id
        n = 2
        while f"{doc_id}#{n}" in self.seen:
            n += 1
        new_id = f"{doc_id}#{n}"
        self.seen.add(new_id)
        self.bad(batch, new_id, "duplicate_id", doc_id, None, action="renamed, kept")
        return new_id

    def record(self, batch: Batch, record: Any, pos: int, where: str, repaired: bool = False) -> None:
        if not isinstance(record, dict):
            self.bad(batch, self.unique_id(batch, where), "not_an_object", type(record).__name__, "object",
                     where=where)
            return
        raw_id = record.get(self.id_field)
        doc_id = self.unique_id(batch, str(raw_id) if raw_id is not None else where)
        if self.text_field not in record:
            self.bad(batch, doc_id, "missing_text_field", None, self.text_field, where=where)
            return
        text = record[self.text_field]
        if not isinstance(text, str):
            self.bad(batch, doc_id, "text_not_a_string", type(text).__name__, "string", where=where)
            return
        meta = {k: v for k, v in record.items() if k != self.text_field}
        self.text(batch, doc_id, text, meta, pos, where, repaired)

    def text(self, batch: Batch, doc_id: str, text: str, meta: dict[str, Any], pos: int, where: str,
             repaired: bool = False) -> None:
        """Add one document unless it is empty or too large; `repaired`: already reported as invalid UTF-8."""
        size = len(text.encode("utf-8", "surrogatepass"))
        if not text.strip():
            self.bad(batch, doc_id, "empty_text", size, 1, where=where)
            return
        if size > self.max_doc_bytes:
            self.bad(batch, doc_id, "too_large", size, self.max_doc_bytes, where=where)
            return
        if self.keep is not None and not self.keep(doc_id):
            batch.sampled_out += 1
            batch.sampled_out_bytes += size
            return
        if repaired:
            batch.dirty.add(pos)  # written back as decoded text, never as the invalid bytes
        elif "\ufffd" in text:
            # Not removed: the rest of the text is good; counted so the damage is visible.
            self.bad(batch, doc_id, "replacement_characters", text.count("\ufffd"), 0, where=where, action="kept")
        batch.docs.append(Document(doc_id, text, meta, pos=pos))

    def decode(self, batch: Batch, raw: bytes, doc_hint: str, where: str) -> tuple[str, bool]:
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError as exc:
            self.bad(batch, doc_hint, "invalid_utf8", exc.start, None, where=where,
                     action="decoded with U+FFFD, kept")
            return raw.decode("utf-8", "replace"), True


def _full(batch: Batch) -> bool:
    return len(batch.docs) >= BATCH_DOCS or batch.bytes_read >= BATCH_BYTES


def _read_jsonl(shard: Shard, checks: _Checks) -> Iterator[Batch]:
    batch = Batch()
    try:
        for pos, raw in iter_lines(shard):
            batch.bytes_read += len(raw)
            where = f"{shard.name}:{pos + 1}"
            if not raw.strip():
                continue
            batch.records += 1
            line, repaired = checks.decode(batch, raw, where, where)
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                checks.bad(batch, checks.unique_id(batch, where), "malformed_json", exc.msg, None, where=where,
                           line=line[:200])
            else:
                checks.record(batch, record, pos, where, repaired=repaired)
            if _full(batch):
                yield batch
                batch = Batch()
    except Exception as exc:  # noqa: BLE001 - gzip, zstd and fsspec raise many types for a damaged file
        # A truncated or damaged compressed file keeps what was read; the rest is reported.
        checks.bad(batch, f"{shard.name}:read-error", "unreadable_file", str(exc), None, where=shard.url)
    yield batch


def iter_lines(shard: Shard) -> Iterator[tuple[int, bytes]]:
    """(line number from 0, bytes) of every line of a JSONL shard, a byte-order mark removed from the first."""
    with open_file(shard.url, "rb", shard.compression) as fh:
        for pos, raw in enumerate(fh):
            if pos == 0 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark some editors write; not part of the JSON
            yield pos, raw


def parquet_batches(shard: Shard) -> Iterator[tuple[int, Any]]:
    """(first row number, record batch) of a Parquet shard, a few thousand rows at a time."""
    import pyarrow.parquet as pq

    with open_file(shard.url, "rb") as fh:
        try:
            file = pq.ParquetFile(fh)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a damaged file
            raise UserError(f"{shard.url}: not a readable Parquet file ({exc})") from exc
        row = 0
        for record_batch in file.iter_batches(batch_size=BATCH_DOCS):
            yield row, record_batch
            row += record_batch.num_rows


def parquet_schema(shard: Shard) -> Any:
    import pyarrow.parquet as pq

    with open_file(shard.url, "rb") as fh:
        return pq.ParquetFile(fh).schema_arrow


def _read_parquet(shard: Shard, checks: _Checks) -> Iterator[Batch]:
    for first, record_batch in parquet_batches(shard):
        batch = Batch(bytes_read=record_batch.nbytes)
        for offset, record in enumerate(record_batch.to_pylist()):
            batch.records += 1
            where = f"{shard.name}:{first + offset}"
            checks.record(batch, record, first + offset, where)
        yield batch


def folder_files(shard: Shard) -> list[str]:
    """Every file of a folder shard, sorted: position `pos` is an index into this list."""
    fs, root = filesystem(shard.url)
    return sorted(p for p in fs.find(root) if not fs.isdir(p))


def _read_folder(shard: Shard, checks: _Checks) -> Iterator[Batch]:
    fs, root = filesystem(shard.url)
    batch = Batch()
    for pos, file in enumerate(folder_files(shard)):
        rel = posixpath.relpath(file, root)
        batch.records += 1
        suffix = posixpath.splitext(file)[1].lower()
        if suffix not in TEXT_SUFFIXES:
            checks.bad(batch, checks.unique_id(batch, rel), "not_a_text_file", suffix, list(TEXT_SUFFIXES[:-1]),
                       where=rel)
            continue
        raw = fs.cat_file(file)
        batch.bytes_read += len(raw)
        doc_id = checks.unique_id(batch, rel)
        text, repaired = checks.decode(batch, raw, doc_id, rel)
        checks.text(batch, doc_id, text, {"path": rel}, pos, rel, repaired=repaired)
        if _full(batch):
            yield batch
            batch = Batch()
    yield batch


def read_shard(shard: Shard, text_field: str = "text", id_field: str = "id", max_doc_bytes: int = 5_000_000,
               keep: Any = None) -> Iterator[Batch]:
    """Batches of one shard's documents, in order; `keep(id)` (a dry run's sample) skips the others."""
    checks = _Checks(shard, text_field, id_field, max_doc_bytes, keep)
    reader = {"jsonl": _read_jsonl, "parquet": _read_parquet, "folder": _read_folder}[shard.kind]
    yield from reader(shard, checks)
