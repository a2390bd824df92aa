"""Adding a finished run to the on-disk near-dedup index: one segment per input shard, holding the documents
that reached near dedup (ids, cluster names, word hashes, band keys), read back from the work folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from truecost.curate.dedup.near import NearSignature
from truecost.curate.dedup.store import gid_of
from truecost.curate.passes import RunSpec
from truecost.curate.sources import open_file
from truecost.curate.stages import Decisions


def _read_all(url: str, dtype: np.dtype) -> np.ndarray:
    with open_file(url, "rb") as fh:
        return np.frombuffer(fh.read(), dtype=dtype)


def append_run(spec: RunSpec, index_dir: Path) -> None:
    """Append this run's near-dedup documents to the index in `index_dir` (skipping ones already there)."""
    from truecost.curate.dedup.index import NearIndex

    near_pass = next(p for p in spec.plan.passes if "near" in p.dedup)
    prefix = spec.dedup_prefix(near_pass.index)
    index = NearIndex.load(index_dir, spec.near_params(), lazy=True)
    known = index.known()
    decisions = Decisions(spec, near_pass)
    exact_removed = set(decisions.exact[decisions.exact[:, 0] != decisions.exact[:, 1], 0].tolist())
    for shard in spec.shards:
        shard_no = spec.shard_no(shard.index)
        name = f"s{shard_no:06d}"
        meta = spec.work.load_array(f"{prefix}/meta/{name}.npy")
        words = _read_all(spec.work.path(f"{prefix}/words/{name}.u32"), np.dtype("<u4"))
        bands = _read_all(spec.work.path(f"{prefix}/bands/{name}.u64"), np.dtype("<u8"))
        ids_blob = _read_all(spec.work.path(f"{prefix}/ids/{name}.bin"), np.dtype("u1")).tobytes()
        signatures, clusters = [], []
        for row, m in enumerate(meta):
            gid = int(gid_of(shard_no, row))
            if gid in exact_removed:
                continue
            doc_id = ids_blob[m["id_start"]:m["id_start"] + m["id_len"]].decode("utf-8", "surrogatepass")
            if (doc_id, int(m["sequence"])) in known:
                continue
            near = decisions._near_of(gid)
            clusters.append(decisions.store.cluster_name(near[0]) if near is not None else doc_id)
            signatures.append(NearSignature(doc_id, words[m["word_start"]:m["word_start"] + m["n_words"]],
                                            int(m["sequence"]), bands[m["band_start"]:m["band_start"] + m["n_bands"]]))
        if signatures:
            index.append(signatures, clusters)
    decisions.close()
