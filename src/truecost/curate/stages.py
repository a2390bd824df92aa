"""The whole-corpus stages, as tasks over partitions of files (so they run on any executor, Ray included):

- boilerplate: lines frequent in some shard are candidates; their corpus-wide counts decide.
- exact: keys are partitioned by hash; each partition groups its keys (`dedup.exact_groups`).
- near: LSH keys are partitioned by hash; each partition turns its buckets into candidate pairs; pairs are
  re-partitioned, verified exactly and joined into local components; the local forests are merged into
  components; components are partitioned by root and split against their kept documents (no chaining).
Every task reads and writes files in the work folder and returns counts; the driver holds nothing else.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from truecost.curate.dedup import clusters
from truecost.curate.dedup.store import DedupStore, gid_of
from truecost.curate.passes import EXACT_RECORD, KEY_RECORD, RunSpec
from truecost.curate.plan import Pass
from truecost.curate.steps.base import StepStats
from truecost.curate.workdir import read_records, write_bytes
from truecost.curate.writers import JsonlPart

_PAIR_MIX = np.uint64(0x9E3779B97F4A7C15)


def _done(spec: RunSpec, stage: str, task: str, result: dict[str, Any], cpu0: float) -> dict[str, Any]:
    result["cpu_seconds"] = time.process_time() - cpu0
    spec.work.mark_done(stage, task, result)
    return result


# -- boilerplate -----------------------------------------------------------------------------------------------------
def boilerplate_task(args: tuple[RunSpec, int, list[str], int]) -> dict[str, Any]:
    """Corpus-wide document counts of the candidate lines, and the boilerplate lines they make."""
    from truecost.curate.steps.normalize import choose_boilerplate, line_hash

    spec, pass_index, candidates, docs = args
    cpu0 = time.process_time()
    p = spec.plan.passes[pass_index]
    hashes = np.array([line_hash(c) for c in candidates], dtype=np.uint64)
    totals = np.zeros(len(candidates), dtype=np.int64)
    for shard in spec.shards:
        if not len(hashes):
            break
        known = spec.work.load_array(f"{p.prefix}/lines/s{shard.index:06d}.hashes.npy")
        counts = spec.work.load_array(f"{p.prefix}/lines/s{shard.index:06d}.counts.npy")
        at = np.minimum(np.searchsorted(known, hashes), max(0, len(known) - 1))
        found = (known[at] == hashes) if len(known) else np.zeros(len(hashes), dtype=bool)
        totals[found] += counts[at[found]]
    lines = choose_boilerplate(dict(zip(candidates, totals.tolist(), strict=True)), docs, spec.settings.normalize)
    write_bytes(spec.work.path(f"{p.prefix}/boilerplate.json"), json.dumps({"lines": sorted(lines)}).encode())
    return _done(spec, f"{p.prefix}-boilerplate", "all", {"lines": len(lines), "candidates": len(candidates)}, cpu0)


# -- exact -------------------------------------------------------------------------------------------------------------
def exact_task(args: tuple[RunSpec, int, int]) -> dict[str, Any]:
    """Groups of equal keys in one partition: (gid, kept gid) of every member."""
    from truecost.curate.dedup import exact_groups

    spec, pass_index, part = args
    cpu0 = time.process_time()
    prefix = spec.dedup_prefix(pass_index)
    records = read_records(spec.work.glob(f"{prefix}/exact/p{part:04d}/*.bin"), EXACT_RECORD)
    keys = np.stack([records["hi"], records["lo"]], axis=1)
    groups = exact_groups(keys, records["gid"].astype(np.int64))
    spec.work.save_array(f"{prefix}/exact/result/p{part:04d}.npy", groups)
    kept = int(np.sum(groups[:, 0] == groups[:, 1]))
    counts = {"clusters": kept, "docs_in_clusters": len(groups), "removed": len(groups) - kept}
    return _done(spec, f"{prefix}-exact", f"p{part:04d}", {"counts": counts}, cpu0)


def _exact_weights(spec: RunSpec, pass_index: int, nodes: np.ndarray) -> dict[int, int]:
    """Documents each of `nodes` stands for when exact dedup ran first: itself and its removed exact copies."""
    if "exact" not in spec.plan.passes[pass_index].dedup or not len(nodes):
        return {}
    groups = spec.work.load_arrays(f"{spec.dedup_prefix(pass_index)}/exact/result/*.npy", np.int64, columns=2)
    kept, counts = np.unique(groups[:, 1], return_counts=True)
    mine = np.isin(kept, nodes)
    return dict(zip(kept[mine].tolist(), counts[mine].tolist(), strict=True))


def _exact_removed(spec: RunSpec, prefix: str) -> np.ndarray:
    groups = spec.work.load_arrays(f"{prefix}/exact/result/*.npy", np.int64, columns=2)
    return np.sort(groups[groups[:, 0] != groups[:, 1], 0])


# -- near --------------------------------------------------------------------------------------------------------------
def _index_keys(spec: RunSpec, part: int) -> tuple[np.ndarray, np.ndarray]:
    """LSH keys of the on-disk index's documents that fall in partition `part`."""
    from truecost.curate.dedup.index import read_segment
    from truecost.curate.dedup.near import sequence_key

    keys, gids = [], []
    for seg in spec.index_segments:
        data = read_segment(seg.url)
        offsets, bands = data["word_offsets"], data["band_offsets"]
        for row in range(len(data["ids"])):
            n = int(offsets[row + 1] - offsets[row])
            if n == 0:
                continue
            own = np.concatenate([data["band_keys"][bands[row]:bands[row + 1]],
                                  np.array([sequence_key(int(data["sequence_hashes"][row]), n)], dtype=np.uint64)])
            keys.append(own)
            gids.append(np.full(len(own), gid_of(seg.shard_no, row), dtype=np.int64))
    if not keys:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    k, g = np.concatenate(keys), np.concatenate(gids)
    mine = k % np.uint64(spec.partitions) == part
    return k[mine], g[mine]


def near_bucket_task(args: tuple[RunSpec, int, int]) -> dict[str, Any]:
    """Candidate pairs of one key partition, re-partitioned by pair for verification."""
    spec, pass_index, part = args
    cpu0 = time.process_time()
    prefix = spec.dedup_prefix(pass_index)
    records = read_records(spec.work.glob(f"{prefix}/near/keys/p{part:04d}/*.bin"), KEY_RECORD)
    keys, gids = records["key"], records["gid"].astype(np.int64)
    if "exact" in spec.plan.passes[pass_index].dedup:
        removed = _exact_removed(spec, prefix)
        alive = ~np.isin(gids, removed, assume_unique=False)
        keys, gids = keys[alive], gids[alive]
    index_keys, index_gids = _index_keys(spec, part)
    keys, gids = np.concatenate([index_keys, keys]), np.concatenate([index_gids, gids])
    pairs = clusters.bucket_pairs(keys, gids, spec.near_params().tries_per_cluster)
    pairs = pairs[pairs[:, 1] >= spec.first_new_gid]  # two indexed documents were settled when indexed
    target = ((pairs[:, 0].astype(np.uint64) * _PAIR_MIX) ^ pairs[:, 1].astype(np.uint64)) % np.uint64(
        spec.partitions)
    for v in range(spec.partitions):
        spec.work.save_array(f"{prefix}/near/pairs/v{v:04d}/p{part:04d}.npy", pairs[target == v])
    return _done(spec, f"{prefix}-near-buckets", f"p{part:04d}", {"pairs": len(pairs)}, cpu0)


def near_verify_task(args: tuple[RunSpec, int, int]) -> dict[str, Any]:
    """Exact verification of one pair partition, and the components its verified pairs make."""
    spec, pass_index, part = args
    cpu0 = time.process_time()
    prefix = spec.dedup_prefix(pass_index)
    pairs = clusters.unique_pairs(spec.work.load_arrays(f"{prefix}/near/pairs/v{part:04d}/*.npy", np.int64, 2))
    store = DedupStore(spec.work, prefix, spec.index_segments)
    edges, sims, counts = clusters.verify_pairs(pairs, store, spec.near_params().threshold)
    store.close()
    nodes, roots = clusters.components(edges)
    spec.work.save_array(f"{prefix}/near/forest/v{part:04d}.npy", np.stack([nodes, roots], axis=1))
    spec.work.save_array(f"{prefix}/near/edges/v{part:04d}.npy", edges)
    spec.work.save_array(f"{prefix}/near/edges/v{part:04d}.sims.npy", sims)
    return _done(spec, f"{prefix}-near-verify", f"v{part:04d}", {"counts": counts.as_dict()}, cpu0)


def near_components_task(args: tuple[RunSpec, int]) -> dict[str, Any]:
    """Merge the partitions' local components (forests of node -> root) into the corpus's components."""
    spec, pass_index = args
    cpu0 = time.process_time()
    prefix = spec.dedup_prefix(pass_index)
    forest = spec.work.load_arrays(f"{prefix}/near/forest/*.npy", np.int64, columns=2)
    nodes, roots = clusters.components(forest)
    for r in range(spec.partitions):
        mine = roots % spec.partitions == r
        spec.work.save_array(f"{prefix}/near/comp/r{r:04d}.npy", np.stack([nodes[mine], roots[mine]], axis=1))
    return _done(spec, f"{prefix}-near-components", "all",
                 {"components": len(np.unique(roots)), "docs": len(nodes)}, cpu0)


def near_split_task(args: tuple[RunSpec, int, int]) -> dict[str, Any]:
    """No chaining, for the components of one partition: clusters verified against their kept document."""
    spec, pass_index, part = args
    cpu0 = time.process_time()
    prefix = spec.dedup_prefix(pass_index)
    comp = spec.work.load_array(f"{prefix}/near/comp/r{part:04d}.npy").reshape(-1, 2)
    store = DedupStore(spec.work, prefix, spec.index_segments)
    # Pairs verified already (only those inside this partition's components are ever looked up).
    edges = spec.work.load_arrays(f"{prefix}/near/edges/v????.npy", np.int64, columns=2)
    sims = spec.work.load_arrays(f"{prefix}/near/edges/v????.sims.npy", np.float64)
    mine = np.isin(edges[:, 0], comp[:, 0]) if len(edges) else np.zeros(0, dtype=bool)
    split = clusters.split_components(comp[:, 0], comp[:, 1], store, spec.near_params().threshold,
                                      first_new=spec.first_new_gid, edges=edges[mine], sims=sims[mine],
                                      weight=_exact_weights(spec, pass_index, comp[:, 0]))
    store.close()
    spec.work.save_array(f"{prefix}/near/split/r{part:04d}.gids.npy", np.stack([split.gid, split.kept], axis=1))
    spec.work.save_array(f"{prefix}/near/split/r{part:04d}.sims.npy", split.similarity)
    return _done(spec, f"{prefix}-near-split", f"r{part:04d}", {"counts": split.counts}, cpu0)


# -- decisions, applied shard by shard ---------------------------------------------------------------------------------
class Decisions:
    """The dedup stages' answers (only documents in a cluster; ascending by gid), looked up per batch."""

    def __init__(self, spec: RunSpec, dedup_pass: Pass) -> None:
        prefix = spec.dedup_prefix(dedup_pass.index)
        self.steps = list(dedup_pass.dedup)
        self.exact = spec.work.load_arrays(f"{prefix}/exact/result/*.npy", np.int64, 2) if "exact" in self.steps \
            else np.zeros((0, 2), dtype=np.int64)
        self.exact = self.exact[np.argsort(self.exact[:, 0], kind="stable")]
        near = spec.work.load_arrays(f"{prefix}/near/split/*.gids.npy", np.int64, 2) if "near" in self.steps \
            else np.zeros((0, 2), dtype=np.int64)
        sims = spec.work.load_arrays(f"{prefix}/near/split/*.sims.npy", np.float64) if "near" in self.steps \
            else np.zeros(0)
        order = np.argsort(near[:, 0], kind="stable")
        self.near, self.sims = near[order], sims[order]
        self.store = DedupStore(spec.work, prefix, spec.index_segments)
        self.threshold = spec.near_params().threshold if "near" in self.steps else 1.0

    @staticmethod
    def _lookup(table: np.ndarray, gid: int) -> int | None:
        i = int(np.searchsorted(table[:, 0], gid))
        return i if i < len(table) and table[i, 0] == gid else None

    def _near_of(self, gid: int) -> tuple[int, float] | None:
        i = self._lookup(self.near, gid)
        return None if i is None else (int(self.near[i, 1]), float(self.sims[i]))

    def apply(self, gids: np.ndarray, ids: list[str], sizes: list[int], snippets: list[str | None],
              stats: dict[str, StepStats], duplicates: JsonlPart) -> list[bool]:
        """Which documents stay; removal records go to `stats`, cluster records to `duplicates`."""
        from truecost.curate.dedup.near import recorded_similarity

        keep = []
        for gid, doc_id, size, snippet in zip(gids.tolist(), ids, sizes, snippets, strict=True):
            verdict = self._one(gid, doc_id, size, snippet, stats)
            keep.append(verdict is None or not verdict["removed"])
            if verdict is not None:
                verdict["similarity"] = recorded_similarity(verdict["similarity"], self.threshold)
                duplicates.write(verdict)
        return keep

    def _count(self, stats: dict[str, StepStats], step: str, size: int, out: bool) -> None:
        st = stats[step]
        st.docs_in += 1
        st.bytes_in += size
        if out:
            st.docs_out += 1
            st.bytes_out += size

    def _one(self, gid: int, doc_id: str, size: int, snippet: str | None,
             stats: dict[str, StepStats]) -> dict[str, Any] | None:
        name = self.store.cluster_name
        record: dict[str, Any] | None = None
        if "exact" in self.steps:
            i = self._lookup(self.exact, gid)
            twin = None if i is None else int(self.exact[i, 1])
            self._count(stats, "exact", size, out=twin is None or twin == gid)
            if twin is not None and twin != gid:
                kept, sim = twin, 1.0
                near = self._near_of(twin) if "near" in self.steps else None
                if near is not None:
                    kept, sim = near
                twin_id = self.store.doc_id(twin)
                stats["exact"].remove_id(doc_id, "exact_duplicate", 1.0, 1.0, snippet, kept=twin_id, matched=twin_id)
                return {"id": doc_id, "cluster": name(kept), "removed": True, "removed_by": "exact",
                        "kept": self.store.doc_id(kept), "similarity": sim}
            if twin == gid:
                record = {"id": doc_id, "cluster": doc_id, "removed": False, "removed_by": None, "kept": doc_id,
                          "similarity": 1.0}
        if "near" in self.steps:
            near = self._near_of(gid)
            self._count(stats, "near", size, out=near is None or near[0] == gid)
            if near is not None and near[0] != gid:
                kept_id = self.store.doc_id(near[0])
                stats["near"].remove_id(doc_id, "near_duplicate", near[1], self.threshold, snippet, kept=kept_id,
                                        matched=kept_id)
                return {"id": doc_id, "cluster": name(near[0]), "removed": True, "removed_by": "near",
                        "kept": kept_id, "similarity": near[1]}
            if near is not None:
                record = {"id": doc_id, "cluster": name(gid), "removed": False, "removed_by": None, "kept": doc_id,
                          "similarity": 1.0}
        return record

    def close(self) -> None:
        self.store.close()


def load_decisions(spec: RunSpec, dedup_pass: Pass) -> Decisions:
    return Decisions(spec, dedup_pass)


# -- the final files ---------------------------------------------------------------------------------------------------
def collect_task(args: tuple[RunSpec]) -> dict[str, Any]:
    """Join the part files into removed.jsonl, duplicates.jsonl and bad_input.jsonl (streamed, in a fixed order:
    bad input, then each step in order, shards in order)."""
    from truecost.curate.sources import join
    from truecost.curate.writers import concatenate

    (spec,) = args
    cpu0 = time.process_time()
    shards = [f"s{s.index:06d}.jsonl" for s in spec.shards]
    prefixes = [p.prefix for p in spec.plan.passes] + ["final"]
    removed = [spec.work.path("input/removed", s) for s in shards]
    for step in spec.settings.steps:
        removed += [spec.work.path(prefix, "removed", step, s) for prefix in prefixes for s in shards]
    counts = {
        "removed": concatenate(removed, join(spec.output, "removed.jsonl")),
        "duplicates": concatenate([spec.work.path(prefix, "duplicates", s) for prefix in prefixes for s in shards],
                                  join(spec.output, "duplicates.jsonl")),
        "bad_input": concatenate([spec.work.path("input/bad", s) for s in shards], join(spec.output,
                                                                                          "bad_input.jsonl")),
    }
    return _done(spec, "collect", "all", counts, cpu0)
