"""Reading inputs (JSONL, JSONL.gz, Parquet, folders of text files) into Documents, and writing kept documents
back in the same format. Bad records become removals of step "input": counted and reported, never fatal."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from truecost.curate.document import Document
from truecost.curate.steps.base import Removal
from truecost.errors import UserError

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
# In a folder, these are read as text documents (one file, one document); other files are reported and skipped.
TEXT_SUFFIXES = (".txt", ".md", ".rst", ".text", ".html", ".htm", "")


@dataclass
class Source:
    """One input as given on the command line, and how its kept documents are written back."""

    path: Path
    kind: str  # "jsonl" | "parquet" | "folder"
    output_name: str
    doc_ids: list[str] = field(default_factory=list)
    schema: Any = None


@dataclass
class Corpus:
    """Everything read: the documents in input order, their sources, and the bad records."""

    docs: list[Document] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    bad: list[Removal] = field(default_factory=list)
    bytes_read: int = 0


def _kind_of(path: Path) -> str:
    name = path.name.lower()
    if path.is_dir():
        return "folder"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    raise UserError(f"{path}: unknown input format (expected .jsonl, .jsonl.gz, .parquet or a folder of text files)")


class _Reader:
    """Turns raw records into Documents, applying the checks every format shares."""

    def __init__(self, corpus: Corpus, text_field: str, id_field: str, max_doc_bytes: int) -> None:
        self.corpus = corpus
        self.text_field = text_field
        self.id_field = id_field
        self.max_doc_bytes = max_doc_bytes
        self.seen: set[str] = set()

    def bad(self, doc_id: str, rule: str, value: Any = None, threshold: Any = None, **extra: Any) -> None:
        self.corpus.bad.append(Removal(doc_id, "input", {"rule": rule, "value": value, "threshold": threshold,
                                                         **extra}))

    def unique_id(self, doc_id: str) -> str:
        # Ids must be unique for removed.jsonl / duplicates.jsonl to mean anything; a repeat gets a suffix.
        if doc_id not in self.seen:
            self.seen.add(doc_id)
            return doc_id
        n = 2
        while f"{doc_id}#{n}" in self.seen:
            n += 1
        new_id = f"{doc_id}#{n}"
        self.seen.add(new_id)
        self.bad(new_id, "duplicate_id", doc_id, None, action="renamed, kept")
        return new_id

    def add_record(self, record: Any, fallback_id: str, source: Source, where: str, repaired: bool = False) -> None:
        if not isinstance(record, dict):
            self.bad(self.unique_id(fallback_id), "not_an_object", type(record).__name__, "object", where=where)
            return
        raw_id = record.get(self.id_field)
        doc_id = self.unique_id(str(raw_id) if raw_id is not None else fallback_id)
        if self.text_field not in record:
            self.bad(doc_id, "missing_text_field", None, self.text_field, where=where)
            return
        text = record[self.text_field]
        if not isinstance(text, str):
            self.bad(doc_id, "text_not_a_string", type(text).__name__, "string", where=where)
            return
        self.add_text(doc_id, text, {k: v for k, v in record.items() if k != self.text_field}, source, where,
                      repaired)

    def add_text(self, doc_id: str, text: str, meta: dict[str, Any], source: Source, where: str,
                 repaired: bool = False) -> None:
        """Add one document unless it is empty or too large; `repaired`: already reported as invalid UTF-8."""
        size = len(text.encode("utf-8", "surrogatepass"))
        if not text.strip():
            self.bad(doc_id, "empty_text", size, 1, where=where)
            return
        if size > self.max_doc_bytes:
            self.bad(doc_id, "too_large", size, self.max_doc_bytes, where=where)
            return
        if not repaired and "\ufffd" in text:
            # Not removed: the rest of the text is good; counted so the damage is visible.
            self.bad(doc_id, "replacement_characters", text.count("\ufffd"), 0, where=where, action="kept")
        self.corpus.docs.append(Document(doc_id, text, meta))
        source.doc_ids.append(doc_id)


def _decode(raw: bytes, reader: _Reader, doc_hint: str, where: str) -> tuple[str, bool]:
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError as exc:
        reader.bad(doc_hint, "invalid_utf8", exc.start, None, where=where, action="decoded with U+FFFD, kept")
        return raw.decode("utf-8", "replace"), False


def _read_jsonl(path: Path, reader: _Reader, source: Source) -> None:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            for line_no, raw in enumerate(fh, start=1):
                reader.corpus.bytes_read += len(raw)
                where = f"{path.name}:{line_no}"
                if not raw.strip():
                    continue
                if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # a UTF-8 byte-order mark some editors write; not part of the JSON
                line, clean = _decode(raw, reader, where, where)
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    reader.bad(reader.unique_id(where), "malformed_json", exc.msg, None, where=where,
                               line=line[:200])
                    continue
                reader.add_record(record, where, source, where, repaired=not clean)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        # A truncated gzip keeps what was read; the rest is reported.
        reader.bad(f"{path.name}:read-error", "unreadable_file", str(exc), None, where=str(path))


def _read_parquet(path: Path, reader: _Reader, source: Source) -> None:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a damaged file
        raise UserError(f"{path}: not a readable Parquet file ({exc})") from exc
    source.schema = table.schema
    reader.corpus.bytes_read += path.stat().st_size
    for row_no, record in enumerate(table.to_pylist()):
        where = f"{path.name}:{row_no}"
        reader.add_record(record, where, source, where)


def _read_folder(path: Path, reader: _Reader, source: Source) -> None:
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if file.suffix.lower() not in TEXT_SUFFIXES:
            reader.bad(reader.unique_id(rel), "not_a_text_file", file.suffix, list(TEXT_SUFFIXES[:-1]), where=rel)
            continue
        raw = file.read_bytes()
        reader.corpus.bytes_read += len(raw)
        doc_id = reader.unique_id(rel)
        text, clean = _decode(raw, reader, doc_id, rel)
        reader.add_text(doc_id, text, {"path": rel}, source, rel, repaired=not clean)


def read_inputs(paths: list[Path], text_field: str = "text", id_field: str = "id",
                max_doc_bytes: int = 5_000_000) -> Corpus:
    """Read every input; a missing path or unknown format is a UserError, a bad record is reported."""
    corpus = Corpus()
    reader = _Reader(corpus, text_field, id_field, max_doc_bytes)
    names: set[str] = set()
    for path in paths:
        if not path.exists():
            raise UserError(f"input {path} does not exist")
        kind = _kind_of(path)
        name = path.name
        while name in names:  # two inputs with one name (a/x.jsonl, b/x.jsonl) must not overwrite each other
            name = f"_{name}"
        names.add(name)
        source = Source(path, kind, name)
        corpus.sources.append(source)
        {"jsonl": _read_jsonl, "parquet": _read_parquet, "folder": _read_folder}[kind](path, reader, source)
    return corpus


def _records(source: Source, docs: dict[str, Document], text_field: str) -> Iterator[dict[str, Any]]:
    for doc_id in source.doc_ids:
        doc = docs.get(doc_id)
        if doc is not None:
            yield {**doc.meta, text_field: doc.text}


def write_kept(corpus: Corpus, kept: list[Document], out_dir: Path, text_field: str = "text") -> list[Path]:
    """Write kept documents under `out_dir/kept/`, one output per input in the input's own format."""
    by_id = {doc.id: doc for doc in kept}
    kept_dir = out_dir / "kept"
    kept_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in corpus.sources:
        target = kept_dir / source.output_name
        if source.kind == "jsonl":
            opener: Any = gzip.open if target.name.lower().endswith(".gz") else open
            with opener(target, "wt", encoding="utf-8") as fh:
                for record in _records(source, by_id, text_field):
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif source.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            rows = list(_records(source, by_id, text_field))
            try:
                table = pa.Table.from_pylist(rows, schema=source.schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError):
                table = pa.Table.from_pylist(rows)
            pq.write_table(table, target)
        else:
            target.mkdir(parents=True, exist_ok=True)
            for doc_id in source.doc_ids:
                doc = by_id.get(doc_id)
                if doc is not None:
                    file = target / doc.meta["path"]
                    file.parent.mkdir(parents=True, exist_ok=True)
                    file.write_text(doc.text, encoding="utf-8")
        written.append(target)
    return written


def write_jsonl(path: Path, rows: list[dict[str, Any]] | Iterator[dict[str, Any]]) -> None:
    """One JSON object per line, UTF-8."""
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
