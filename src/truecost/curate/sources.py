"""Inputs as shards: local paths, globs and fsspec URLs (`s3://`, `gs://`, `hf://`, `memory://`...), one file one
shard (a folder of text files is one shard too). Every read and write in curate goes through `open_file`, so a
URL works wherever a path does."""

from __future__ import annotations

import gzip
import io
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from truecost.errors import MissingExtra, UserError

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSIONS: dict[str, Literal["gzip", "zstd"]] = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
# In a folder, these are read as text documents (one file, one document); other files are reported and skipped.
TEXT_SUFFIXES = (".txt", ".md", ".rst", ".text", ".html", ".htm", "")
ShardKind = Literal["jsonl", "parquet", "folder"]


@dataclass(frozen=True)
class Shard:
    """One unit of work: a JSONL or Parquet file, or a folder of text files, and where its kept documents go."""

    index: int
    url: str  # what fsspec opens (a plain path for local files)
    kind: ShardKind
    compression: Literal["gzip", "zstd"] | None
    output_name: str  # path of the kept output under `kept/`
    size: int
    modified: str  # size and modification time make the resume fingerprint

    @property
    def name(self) -> str:
        return posixpath.basename(self.url.rstrip("/"))


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a local path or URL."""
    try:
        import fsspec
    except ImportError as exc:
        raise MissingExtra("fsspec", "curate", "truecost curate") from exc
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise UserError(f"{url}: cannot open this location ({exc})") from exc


def is_url(text: str) -> bool:
    return "://" in text


def join(base: str, *parts: str) -> str:
    """`base` joined with `parts` by '/', for paths and URLs alike."""
    return posixpath.join(base.rstrip("/") if base != "/" else base, *parts)


def kind_of(name: str) -> tuple[ShardKind | None, Literal["gzip", "zstd"] | None]:
    """(format, compression) from a file name; format None when it is not a data file."""
    lower = name.lower()
    compression = None
    for suffix, comp in COMPRESSIONS.items():
        if lower.endswith(suffix):
            compression, lower = comp, lower[: -len(suffix)]
            break
    if lower.endswith(JSONL_SUFFIXES):
        return "jsonl", compression
    if lower.endswith(PARQUET_SUFFIXES) and compression is None:
        return "parquet", None
    return None, compression


@contextmanager
def open_file(url: str, mode: str, compression: str | None = None) -> Iterator[IO[bytes]]:
    """A binary file at `url` (read 'rb' or write 'wb'), decompressed or compressed on the fly."""
    fs, path = filesystem(url)
    if "w" in mode:
        parent = posixpath.dirname(path)
        if parent:
            fs.makedirs(parent, exist_ok=True)
    with fs.open(path, mode) as raw:
        if compression is None:
            yield raw
        elif compression == "gzip":
            # Level 6 (zlib's default): gzip's own default of 9 costs ~3x the CPU for ~2% smaller files.
            # mtime 0: the same documents give the same bytes, whenever and wherever they are written.
            with gzip.GzipFile(fileobj=raw, mode=mode, compresslevel=6, mtime=0) as packed:
                yield packed  # type: ignore[misc]
        else:
            zstd = _zstandard()
            if "w" in mode:
                with zstd.ZstdCompressor(level=3).stream_writer(raw, closefd=False) as packed:
                    yield packed
            else:
                with zstd.ZstdDecompressor().stream_reader(raw, closefd=False) as unpacked:
                    yield io.BufferedReader(unpacked)


def _zstandard() -> Any:
    try:
        import zstandard
    except ImportError as exc:
        raise MissingExtra("zstandard", "curate", "reading and writing .zst files") from exc
    return zstandard


def _describe(fs: Any, path: str) -> tuple[int, str]:
    info = fs.info(path)
    modified = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created")
    return int(info.get("size") or 0), str(modified or "")


def _expand(item: str) -> list[tuple[Any, str, str]]:
    """(fs, path, url) of each file or folder one input names; a glob may name many."""
    fs, path = filesystem(item)
    protocol = item.split("://", 1)[0] + "://" if is_url(item) else ""
    if any(ch in path for ch in "*?["):
        matches = sorted(fs.glob(path))
        if not matches:
            raise UserError(f"input {item} matches no file")
        return [(fs, m, protocol + m if protocol else m) for m in matches]
    if not fs.exists(path):
        raise UserError(f"input {item} does not exist")
    return [(fs, path, item if protocol else str(Path(path)))]


def _folder_files(fs: Any, path: str) -> list[str]:
    return sorted(p for p in fs.find(path) if not fs.isdir(p))


def list_shards(inputs: list[str]) -> list[Shard]:
    """Every input as shards, in the order given (globs sorted). A folder of text files is one shard; a folder
    holding only JSONL/Parquet files is one shard per file. A missing input or unknown format is a UserError."""
    shards: list[Shard] = []
    names: set[str] = set()

    def add(fs: Any, path: str, url: str, kind: ShardKind, comp: Any, name: str) -> None:
        while name in names:  # two inputs with one name (a/x.jsonl, b/x.jsonl) must not overwrite each other
            head, tail = posixpath.split(name)
            name = posixpath.join(head, f"_{tail}")
        names.add(name)
        size, modified = _describe(fs, path)
        shards.append(Shard(len(shards), url, kind, comp, name, size, modified))

    for item in inputs:
        for fs, path, url in _expand(str(item)):
            base = posixpath.basename(path.rstrip("/"))
            if fs.isdir(path):
                files = _folder_files(fs, path)
                data = [(f, kind_of(f)) for f in files]
                text = [f for f, (kind, _) in data if kind is None]
                if data and not text:
                    for f, (kind, comp) in data:
                        rel = posixpath.relpath(f, path)
                        add(fs, f, url.rstrip("/") + "/" + rel, kind, comp, posixpath.join(base, rel))  # type: ignore
                else:
                    add(fs, path, url, "folder", None, base)
                continue
            kind, comp = kind_of(base)
            if kind is None:
                raise UserError(f"{url}: unknown input format (expected .jsonl, .jsonl.gz, .jsonl.zst, .parquet or "
                                "a folder of text files)")
            add(fs, path, url, kind, comp, base)
    return shards
