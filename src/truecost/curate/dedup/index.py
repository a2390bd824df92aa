"""On-disk near-dedup index, so a new dataset can be deduplicated against datasets processed before.

Layout of the index folder: `manifest.json` (format, parameters, segment list) and one `segment-NNNNNN.npz` per
dataset added, holding each document's id, cluster id, word hashes and band keys. Segments are written to a
temporary name and renamed, and the manifest is replaced last, so an interrupted run never corrupts the index.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from truecost.curate.dedup.near import NearDedupParams, NearSignature
from truecost.errors import UserError

FORMAT = "truecost-near-dedup-index"
VERSION = 1


class NearIndex:
    """Documents of earlier datasets (signatures and cluster ids), loaded from and appended to a folder."""

    def __init__(self, path: Path, params: NearDedupParams, manifest: dict[str, Any]) -> None:
        self.path = path
        self.params = params
        self.manifest = manifest
        self.signatures: list[NearSignature] = []
        self.clusters: list[str] = []
        self.lazy = False  # True: segments stay on disk (only the manifest is in memory)

    @classmethod
    def load(cls, path: Path, params: NearDedupParams, lazy: bool = False) -> NearIndex:
        """Open the index in `path` (an empty index when the folder is new or empty); `lazy`: read only the
        manifest (the streaming pipeline reads segments one at a time)."""
        if path.exists() and not path.is_dir():
            raise UserError(f"dedup index path is not a folder: {path}")
        manifest_path = path / "manifest.json"
        if not manifest_path.exists():
            empty = cls(path, params, {"format": FORMAT, "version": VERSION, "params": params.as_dict(),
                                       "segments": []})
            empty.lazy = lazy
            return empty
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"unreadable dedup index manifest {manifest_path}: {exc}") from None
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise UserError(f"{path} is not a version-{VERSION} truecost near-dedup index")
        if manifest.get("params") != params.as_dict():
            raise UserError(
                f"dedup index {path} was built with near-dedup parameters {manifest.get('params')}, "
                f"not {params.as_dict()}; use the same parameters or a new index folder"
            )
        index = cls(path, params, manifest)
        index.lazy = lazy
        if not lazy:
            for segment in manifest["segments"]:
                index._read_segment(path / segment["file"])
        return index

    def _read_segment(self, file: Path) -> None:
        data = read_segment(str(file))
        ids, clusters = data["ids"].tolist(), data["clusters"].tolist()
        word_offsets, words = data["word_offsets"], data["words"]
        band_offsets, bands = data["band_offsets"], data["band_keys"]
        seq = data["sequence_hashes"]
        for i, doc_id in enumerate(ids):
            self.signatures.append(NearSignature(
                id=doc_id,
                words=words[word_offsets[i] : word_offsets[i + 1]],
                sequence_hash=int(seq[i]),
                band_keys=bands[band_offsets[i] : band_offsets[i + 1]],
            ))
        self.clusters.extend(clusters)

    def segment_files(self) -> list[tuple[Path, int]]:
        """(file, documents) of every segment, in order."""
        return [(self.path / seg["file"], int(seg["docs"])) for seg in self.manifest["segments"]]

    def __len__(self) -> int:
        return len(self.signatures)

    def known(self) -> set[tuple[str, int]]:
        """(id, sequence hash) of every indexed document, read segment by segment."""
        if not self.lazy:
            return {(s.id, s.sequence_hash) for s in self.signatures}
        out: set[tuple[str, int]] = set()
        for file, _ in self.segment_files():
            data = read_segment(str(file))
            out.update(zip(data["ids"].tolist(), (int(x) for x in data["sequence_hashes"]), strict=True))
        return out

    def append(self, signatures: Sequence[NearSignature], clusters: Sequence[str]) -> Path | None:
        """Add one dataset's documents as a new segment; returns the segment file (None if nothing was new).

        A document already indexed with the same id and the same words (a re-run) is not added twice.
        """
        known = self.known()
        fresh = [(s, c) for s, c in zip(signatures, clusters, strict=True) if (s.id, s.sequence_hash) not in known]
        if not fresh:
            return None
        signatures, clusters = [s for s, _ in fresh], [c for _, c in fresh]
        self.path.mkdir(parents=True, exist_ok=True)
        name = f"segment-{len(self.manifest['segments']) + 1:06d}.npz"

        def offsets(arrays: list[np.ndarray]) -> np.ndarray:
            return np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)

        word_arrays = [s.words for s in signatures]
        band_arrays = [s.band_keys for s in signatures]
        tmp = self.path / f".{name}.tmp.npz"
        np.savez(
            tmp,
            ids=np.array([s.id for s in signatures], dtype=np.str_),
            clusters=np.array(list(clusters), dtype=np.str_),
            word_offsets=offsets(word_arrays),
            words=np.concatenate(word_arrays) if word_arrays else np.zeros(0, dtype=np.uint32),
            band_offsets=offsets(band_arrays),
            band_keys=np.concatenate(band_arrays) if band_arrays else np.zeros(0, dtype=np.uint64),
            sequence_hashes=np.array([s.sequence_hash for s in signatures], dtype=np.uint64),
        )
        os.replace(tmp, self.path / name)
        self.manifest["segments"].append({"file": name, "docs": len(signatures)})
        self.manifest["docs"] = sum(seg["docs"] for seg in self.manifest["segments"])
        manifest_tmp = self.path / ".manifest.json.tmp"
        manifest_tmp.write_text(json.dumps(self.manifest, indent=1), encoding="utf-8")
        os.replace(manifest_tmp, self.path / "manifest.json")
        if not self.lazy:
            self.signatures.extend(signatures)
            self.clusters.extend(clusters)
        return self.path / name


def read_segment(url: str) -> dict[str, np.ndarray]:
    """The arrays of one index segment; a damaged file is a UserError naming it."""
    from truecost.curate.sources import open_file

    try:
        with open_file(url, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            return {key: data[key] for key in ("ids", "clusters", "word_offsets", "words", "band_offsets",
                                                "band_keys", "sequence_hashes")}
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"unreadable dedup index segment {url}: {exc}") from None
