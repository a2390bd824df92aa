"""Writing, shard by shard: documents between passes (Arrow IPC), kept documents in the input's own format, and
JSONL parts (removals, duplicates, bad input) that are joined into the final files at the end."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from truecost.curate.document import Document
from truecost.curate.readers import folder_files, iter_lines, parquet_batches, parquet_schema
from truecost.curate.sources import Shard, filesystem, open_file


@dataclass
class Row:
    """A document between passes: where it is in its shard, its id, its text when it differs from the input's
    (None: the input's text, unchanged), whether it must be re-serialised, and its current size."""

    pos: int
    id: str
    text: str | None
    dirty: bool
    n_bytes: int


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([("pos", pa.int64()), ("id", pa.string()), ("text", pa.large_string()),
                      ("dirty", pa.bool_()), ("n_bytes", pa.int64())])


# Arrow arrays are built from buffers, not with `pa.array`: that call imports pandas on first use (~0.5 CPU-s,
# a tenth of a 10 MB run), which nothing here needs.
def _int64_array(values: list[int]) -> Any:
    import numpy as np
    import pyarrow as pa

    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(np.asarray(values, dtype=np.int64))])


def _bool_array(values: list[bool]) -> Any:
    import numpy as np
    import pyarrow as pa

    bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def _string_array(values: list[str | None], large: bool) -> Any:
    """A UTF-8 string column (None: null); encoding errors raise as `pa.array` would."""
    import numpy as np
    import pyarrow as pa

    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    offsets = np.zeros(len(values) + 1, dtype=np.int64 if large else np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.large_string() if large else pa.string(), len(values),
                                 [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


class DocsWriter:
    """The documents one pass leaves, in order (their row number is their place in the pass's dedup)."""

    def __init__(self, url: str, full_text: bool) -> None:
        import pyarrow as pa

        self.full_text = full_text
        self._ctx = open_file(url, "wb")
        self._fh = self._ctx.__enter__()
        self._writer = pa.ipc.new_stream(self._fh, _schema())
        self.rows = 0

    def write(self, docs: list[Document], dirty: set[int], n_bytes: list[int]) -> None:
        import pyarrow as pa

        texts = [d.text if self.full_text or d.pos in dirty else None for d in docs]
        columns = [_int64_array([d.pos for d in docs]), _string_array([d.id for d in docs], large=False),
                   _string_array(texts, large=True), _bool_array([d.pos in dirty for d in docs]),
                   _int64_array(n_bytes)]
        self._writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=_schema()))
        self.rows += len(docs)

    def close(self) -> None:
        self._writer.close()
        self._ctx.__exit__(None, None, None)


def read_rows(url: str) -> Iterator[list[Row]]:
    """Batches of rows written by `DocsWriter`, in order."""
    import pyarrow as pa

    with open_file(url, "rb") as fh:
        reader = pa.ipc.open_stream(fh)
        for batch in reader:
            columns = batch.to_pydict()
            yield [Row(*values) for values in zip(columns["pos"], columns["id"], columns["text"], columns["dirty"],
                                                  columns["n_bytes"], strict=True)]


class JsonlPart:
    """One JSONL part file, written as records arrive."""

    def __init__(self, url: str) -> None:
        self._ctx = open_file(url, "wb")
        self._fh = self._ctx.__enter__()

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False, default=str).encode("utf-8") + b"\n")

    def close(self) -> None:
        self._ctx.__exit__(None, None, None)


def _record_with_text(raw: bytes, text_field: str, text: str | None) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(raw.decode("utf-8", "replace"))
    current = record.pop(text_field)
    record[text_field] = current if text is None else text
    return record


def _kept_jsonl(shard: Shard, rows: Iterator[Row], url: str, text_field: str) -> tuple[int, int]:
    """Unchanged records are copied byte for byte (no JSON decoding); changed ones re-serialised."""
    docs = size = 0
    want = next(rows, None)
    with open_file(url, "wb", shard.compression) as out:
        if want is not None:
            for pos, raw in iter_lines(shard):
                if pos != want.pos:
                    continue
                if want.text is None and not want.dirty:
                    out.write(raw if raw.endswith(b"\n") else raw + b"\n")
                else:
                    record = _record_with_text(raw, text_field, want.text)
                    out.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
                docs, size = docs + 1, size + want.n_bytes
                want = next(rows, None)
                if want is None:
                    break
    return docs, size


def _kept_parquet(shard: Shard, rows: Iterator[Row], url: str, text_field: str) -> tuple[int, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    docs = size = 0
    schema = parquet_schema(shard)
    want = next(rows, None)
    with open_file(url, "wb") as fh, pq.ParquetWriter(fh, schema) as writer:
        for first, record_batch in parquet_batches(shard):
            end = first + record_batch.num_rows
            picked: list[Row] = []
            while want is not None and want.pos < end:
                picked.append(want)
                want = next(rows, None)
            if not picked:
                continue
            records = record_batch.take(pa.array([r.pos - first for r in picked])).to_pylist()
            for record, row in zip(records, picked, strict=True):
                if row.text is not None:
                    record[text_field] = row.text
            writer.write_table(pa.Table.from_pylist(records, schema=schema))
            docs, size = docs + len(picked), size + sum(r.n_bytes for r in picked)
    return docs, size


def _kept_folder(shard: Shard, rows: Iterator[Row], url: str) -> tuple[int, int]:
    fs, root = filesystem(shard.url)
    files = folder_files(shard)
    docs = size = 0
    for row in rows:
        rel = posixpath.relpath(files[row.pos], root)
        text = row.text if row.text is not None else fs.cat_file(files[row.pos]).decode("utf-8", "replace")
        with open_file(posixpath.join(url, rel), "wb") as out:
            out.write(text.encode("utf-8"))
        docs, size = docs + 1, size + row.n_bytes
    if docs == 0:
        out_fs, out_path = filesystem(url)
        out_fs.makedirs(out_path, exist_ok=True)
    return docs, size


def write_kept(shard: Shard, rows: Iterable[Row], url: str, text_field: str) -> tuple[int, int]:
    """Write the rows that stay (ascending `pos`) in the shard's own format; (documents, bytes) written."""
    it = iter(rows)
    if shard.kind == "jsonl":
        return _kept_jsonl(shard, it, url, text_field)
    if shard.kind == "parquet":
        return _kept_parquet(shard, it, url, text_field)
    return _kept_folder(shard, it, url)


def concatenate(parts: Iterable[str], url: str) -> int:
    """Join JSONL part files (missing ones skipped) into one file at `url`; returns the lines written."""
    from truecost.curate.workdir import iter_jsonl

    lines = 0
    with open_file(url, "wb") as out:
        for part in parts:
            for line in iter_jsonl(part):
                out.write(line)
                lines += 1
    return lines
