"""Per-document dedup data on disk, by document number (`gid = shard << 40 | row`): ids, word hashes, sizes and
sequence hashes, written shard by shard during a pass and read back by any task with random access, so no
process ever holds the corpus. Segments of an on-disk near-dedup index are read through the same interface."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from truecost.curate.sources import open_file
from truecost.curate.workdir import WorkDir, load_array

ROW_BITS = 40
ROW_MASK = (1 << ROW_BITS) - 1
META_DTYPE = np.dtype([("word_start", "<i8"), ("n_words", "<i8"), ("sequence", "<u8"), ("id_start", "<i8"),
                       ("id_len", "<i8"), ("band_start", "<i8"), ("n_bands", "<i8")])
_CACHED_SHARDS = 8


def gid_of(shard_no: int, rows: np.ndarray | int) -> Any:
    """Document numbers of `rows` of store shard `shard_no`."""
    return (np.int64(shard_no) << np.int64(ROW_BITS)) | np.asarray(rows, dtype=np.int64)


def split_gid(gid: int) -> tuple[int, int]:
    return gid >> ROW_BITS, gid & ROW_MASK


class ShardStoreWriter:
    """Writes one shard's ids (and word hashes, for near dedup) as the pass produces them."""

    def __init__(self, work: WorkDir, prefix: str, shard_no: int, with_words: bool, with_bands: bool = False
                 ) -> None:
        self.work, self.prefix, self.shard_no = work, prefix, shard_no
        self._ids_ctx = open_file(work.path(f"{prefix}/ids/s{shard_no:06d}.bin"), "wb")
        self._ids = self._ids_ctx.__enter__()
        self._words_ctx = open_file(work.path(f"{prefix}/words/s{shard_no:06d}.u32"), "wb") if with_words else None
        self._words = self._words_ctx.__enter__() if self._words_ctx else None
        self._bands_ctx = open_file(work.path(f"{prefix}/bands/s{shard_no:06d}.u64"), "wb") if with_bands else None
        self._bands = self._bands_ctx.__enter__() if self._bands_ctx else None
        self.meta: list[np.ndarray] = []
        self.word_pos = self.id_pos = self.band_pos = 0

    def add(self, ids: Sequence[str], words: Sequence[np.ndarray] | None = None,
            sequences: Sequence[int] | None = None, bands: Sequence[np.ndarray] | None = None) -> None:
        encoded = [i.encode("utf-8", "surrogatepass") for i in ids]
        meta = np.zeros(len(ids), dtype=META_DTYPE)
        id_lens = np.array([len(e) for e in encoded], dtype=np.int64)
        meta["id_len"] = id_lens
        meta["id_start"] = self.id_pos + np.concatenate([[0], np.cumsum(id_lens)[:-1]]) if len(ids) else 0
        self._ids.write(b"".join(encoded))
        self.id_pos += int(id_lens.sum())
        if words is not None and self._words is not None:
            lens = np.array([len(w) for w in words], dtype=np.int64)
            meta["n_words"] = lens
            meta["word_start"] = self.word_pos + np.concatenate([[0], np.cumsum(lens)[:-1]]) if len(ids) else 0
            meta["sequence"] = np.array(sequences, dtype=np.uint64)
            for w in words:
                self._words.write(np.ascontiguousarray(w, dtype=np.uint32).tobytes())
            self.word_pos += int(lens.sum())
        if bands is not None and self._bands is not None:
            lens = np.array([len(b) for b in bands], dtype=np.int64)
            meta["n_bands"] = lens
            meta["band_start"] = self.band_pos + np.concatenate([[0], np.cumsum(lens)[:-1]]) if len(ids) else 0
            for b in bands:
                self._bands.write(np.ascontiguousarray(b, dtype=np.uint64).tobytes())
            self.band_pos += int(lens.sum())
        self.meta.append(meta)

    def close(self) -> None:
        self._ids_ctx.__exit__(None, None, None)
        for ctx in (self._words_ctx, self._bands_ctx):
            if ctx is not None:
                ctx.__exit__(None, None, None)
        meta = np.concatenate(self.meta) if self.meta else np.zeros(0, dtype=META_DTYPE)
        self.work.save_array(f"{self.prefix}/meta/s{self.shard_no:06d}.npy", meta)


@dataclass(frozen=True)
class IndexSegment:
    """One segment file of an on-disk near-dedup index, read as store shard `shard_no`."""

    url: str
    shard_no: int
    docs: int


class _IndexShard:
    """An index segment loaded whole (segments are written one per input shard, so they stay shard-sized)."""

    def __init__(self, segment: IndexSegment) -> None:
        from truecost.curate.dedup.index import read_segment

        data = read_segment(segment.url)
        self.ids: list[str] = data["ids"].tolist()
        self.clusters: list[str] = data["clusters"].tolist()
        self.words, self.offsets = data["words"], data["word_offsets"]
        self.sequences = data["sequence_hashes"]
        self.band_offsets, self.band_keys = data["band_offsets"], data["band_keys"]

    def n_words(self, rows: np.ndarray) -> np.ndarray:
        return (self.offsets[rows + 1] - self.offsets[rows]).astype(np.int64)

    def word_slice(self, row: int) -> np.ndarray:
        return self.words[self.offsets[row]:self.offsets[row + 1]]


class DedupStore:
    """Random access to the documents of one dedup pass (and of the index), by gid: a `clusters.WordSource`."""

    def __init__(self, work: WorkDir, prefix: str, segments: Sequence[IndexSegment] = ()) -> None:
        self.work, self.prefix = work, prefix
        self.segments = {s.shard_no: s for s in segments}
        self._meta: OrderedDict[int, Any] = OrderedDict()
        self._handles: OrderedDict[int, Any] = OrderedDict()

    def _shard(self, shard_no: int) -> Any:
        got = self._meta.get(shard_no)
        if got is None:
            if shard_no in self.segments:
                got = _IndexShard(self.segments[shard_no])
            else:
                got = load_array(self.work.path(f"{self.prefix}/meta/s{shard_no:06d}.npy"))
            self._meta[shard_no] = got
            if len(self._meta) > _CACHED_SHARDS:
                self._meta.popitem(last=False)
        else:
            self._meta.move_to_end(shard_no)
        return got

    def _read(self, kind: str, shard_no: int, start: int, length: int) -> bytes:
        key = (shard_no << 1) | (kind == "words")
        handle = self._handles.get(key)
        if handle is None:
            suffix = "u32" if kind == "words" else "bin"
            ctx = open_file(self.work.path(f"{self.prefix}/{kind}/s{shard_no:06d}.{suffix}"), "rb")
            handle = (ctx, ctx.__enter__())
            self._handles[key] = handle
            if len(self._handles) > 2 * _CACHED_SHARDS:
                old_ctx, _ = self._handles.popitem(last=False)[1]
                old_ctx.__exit__(None, None, None)
        fh = handle[1]
        fh.seek(start)
        data: bytes = fh.read(length)
        return data

    def words(self, gid: int) -> np.ndarray:
        shard_no, row = split_gid(gid)
        shard = self._shard(shard_no)
        if isinstance(shard, _IndexShard):
            return shard.word_slice(row)
        meta = shard[row]
        raw = self._read("words", shard_no, int(meta["word_start"]) * 4, int(meta["n_words"]) * 4)
        return np.frombuffer(raw, dtype=np.uint32)

    def n_words(self, gids: np.ndarray) -> np.ndarray:
        out = np.zeros(len(gids), dtype=np.int64)
        shard_nos = np.asarray(gids) >> ROW_BITS
        for shard_no in np.unique(shard_nos).tolist():
            mask = shard_nos == shard_no
            rows = np.asarray(gids)[mask] & ROW_MASK
            shard = self._shard(shard_no)
            out[mask] = shard.n_words(rows) if isinstance(shard, _IndexShard) else shard["n_words"][rows]
        return out

    def sequence_hash(self, gid: int) -> int:
        shard_no, row = split_gid(gid)
        shard = self._shard(shard_no)
        if isinstance(shard, _IndexShard):
            return int(shard.sequences[row])
        return int(shard["sequence"][row])

    def doc_id(self, gid: int) -> str:
        shard_no, row = split_gid(gid)
        shard = self._shard(shard_no)
        if isinstance(shard, _IndexShard):
            return shard.ids[row]
        meta = shard[row]
        return self._read("ids", shard_no, int(meta["id_start"]), int(meta["id_len"])).decode("utf-8",
                                                                                               "surrogatepass")

    def cluster_name(self, gid: int) -> str:
        """The cluster a kept document names: an indexed document's recorded cluster, else its own id."""
        shard_no, row = split_gid(gid)
        shard = self._shard(shard_no) if shard_no in self.segments else None
        return shard.clusters[row] if isinstance(shard, _IndexShard) else self.doc_id(gid)

    def close(self) -> None:
        for ctx, _ in self._handles.values():
            ctx.__exit__(None, None, None)
        self._handles.clear()
