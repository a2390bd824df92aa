"""The per-shard tasks: a pass over one shard (read, apply the previous whole-corpus decision, run the steps,
collect keys for the next one, write the documents that remain) and the final stage (apply dedup, write kept).

Each task reads and writes only files (input, work folder, output), returns a small JSON-able summary, and writes
its completion marker last; so any executor can run it, a rerun skips it once marked, and nothing it holds grows
beyond one batch and the shard's dedup keys.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from truecost.curate.dedup.store import IndexSegment, ShardStoreWriter, gid_of
from truecost.curate.document import Document
from truecost.curate.plan import Pass, Plan
from truecost.curate.readers import Batch, read_shard
from truecost.curate.settings import CurateSettings
from truecost.curate.sources import Shard, join
from truecost.curate.steps.base import StepStats, run_map
from truecost.curate.workdir import Appender, WorkDir
from truecost.curate.writers import DocsWriter, JsonlPart, Row, read_rows, write_kept

EXACT_RECORD = np.dtype([("hi", "<u8"), ("lo", "<u8"), ("gid", "<i8")])
KEY_RECORD = np.dtype([("key", "<u8"), ("gid", "<i8")])


@dataclass(frozen=True)
class RunSpec:
    """Everything a task needs, small and picklable: where things are, the shards, the settings and the plan."""

    work: WorkDir
    output: str  # output folder ("" when only the report is written)
    shards: tuple[Shard, ...]
    settings: CurateSettings
    plan: Plan
    partitions: int
    index_segments: tuple[IndexSegment, ...] = ()
    sample: float | None = None

    def shard_no(self, shard_index: int) -> int:
        """Store shard number of an input shard (index segments come first, so they sort first)."""
        return len(self.index_segments) + shard_index

    @property
    def first_new_gid(self) -> int:
        return int(gid_of(len(self.index_segments), 0))

    def dedup_prefix(self, pass_index: int) -> str:
        return f"dedup{pass_index}"

    def near_params(self) -> Any:
        from truecost.curate.dedup import NearDedupParams

        return NearDedupParams(**{k: v for k, v in self.settings.near.items() if k != "update_index"})


def step_stats(names: list[str] | tuple[str, ...]) -> dict[str, StepStats]:
    return {name: StepStats(name) for name in names}


# -- sources of a pass --------------------------------------------------------------------------------------------
def _from_input(spec: RunSpec, shard: Shard) -> Iterator[Batch]:
    keep = None
    if spec.sample is not None:
        from truecost.curate.pipeline import in_sample

        fraction = spec.sample

        def keep(doc_id: str) -> bool:
            return in_sample(doc_id, fraction)

    s = spec.settings
    yield from read_shard(shard, s.text_field, s.id_field, s.max_doc_bytes, keep)


def _from_previous(spec: RunSpec, previous: Pass, shard: Shard) -> Iterator[Batch]:
    for rows in read_rows(spec.work.path(f"{previous.prefix}/docs/s{shard.index:06d}.arrow")):
        batch = Batch()
        for row in rows:
            batch.docs.append(Document(row.id, row.text or "", {}, pos=row.pos))
            if row.dirty:
                batch.dirty.add(row.pos)
        yield batch


# -- collecting keys for the next whole-corpus phase ---------------------------------------------------------------
class KeyCollector:
    """Exact keys, near signatures and ids of one shard's documents, written as the pass produces them."""

    def __init__(self, spec: RunSpec, p: Pass, shard: Shard, stats: dict[str, StepStats]) -> None:
        self.spec, self.p, self.stats = spec, p, stats
        self.shard_no = spec.shard_no(shard.index)
        prefix = spec.dedup_prefix(p.index)
        name = f"s{self.shard_no:06d}.bin"
        self.store = ShardStoreWriter(spec.work, prefix, self.shard_no, with_words="near" in p.dedup,
                                      with_bands="near" in p.dedup and spec.settings.dedup_index_dir is not None)
        self.exact = Appender(spec.work, f"{prefix}/exact/p{{part:04d}}/{name}") if "exact" in p.dedup else None
        self.near = Appender(spec.work, f"{prefix}/near/keys/p{{part:04d}}/{name}") if "near" in p.dedup else None
        self.params = spec.near_params() if self.near else None
        self.rows = 0

    def add(self, docs: list[Document]) -> None:
        from truecost.curate.dedup import exact_keys_of_normalised, signatures_of_normalised
        from truecost.curate.dedup.near import lsh_keys

        gids = gid_of(self.shard_no, np.arange(self.rows, self.rows + len(docs)))
        self.rows += len(docs)
        parts = self.spec.partitions
        if self.exact is not None:
            cpu0 = time.process_time()
            keys = exact_keys_of_normalised([d.normalised_words for d in docs])
            records = np.zeros(len(docs), dtype=EXACT_RECORD)
            records["hi"], records["lo"], records["gid"] = keys[:, 0], keys[:, 1], gids
            for part in range(parts):
                self.exact.write(part, records[records["lo"] % np.uint64(parts) == part])
            self.stats["exact"].cpu_seconds += time.process_time() - cpu0
        if self.near is None:
            self.store.add([d.id for d in docs])
            return
        cpu0 = time.process_time()
        sigs = signatures_of_normalised([d.id for d in docs], [d.normalised_words for d in docs], self.params)
        key_lists = [lsh_keys(s) for s in sigs]
        sizes = np.array([len(k) for k in key_lists], dtype=np.int64)
        records = np.zeros(int(sizes.sum()), dtype=KEY_RECORD)
        if len(records):
            records["key"] = np.concatenate(key_lists)
            records["gid"] = np.repeat(gids, sizes)
        for part in range(parts):
            self.near.write(part, records[records["key"] % np.uint64(parts) == part])
        self.store.add([d.id for d in docs], [s.words for s in sigs], [s.sequence_hash for s in sigs],
                       [s.band_keys for s in sigs])
        self.stats["near"].cpu_seconds += time.process_time() - cpu0

    def close(self) -> None:
        self.store.close()
        for appender in (self.exact, self.near):
            if appender is not None:
                appender.close()


# -- the pass task ---------------------------------------------------------------------------------------------------
class _Parts:
    """Removal records of this task, one JSONL part per step."""

    def __init__(self, work: WorkDir, prefix: str, shard: Shard) -> None:
        self.work, self.prefix, self.shard = work, prefix, shard
        self.parts: dict[str, JsonlPart] = {}

    def drain(self, stats: dict[str, StepStats]) -> None:
        for name, st in stats.items():
            if not st.removals:
                continue
            part = self.parts.get(name)
            if part is None:
                part = JsonlPart(self.work.path(f"{self.prefix}/removed/{name}/s{self.shard.index:06d}.jsonl"))
                self.parts[name] = part
            for removal in st.removals:
                part.write(removal.to_dict())
            st.removals.clear()

    def close(self) -> None:
        for part in self.parts.values():
            part.close()


def _mark_changed(docs: list[Document], originals: dict[int, str], dirty: set[int]) -> None:
    for d in docs:
        before = originals.get(d.pos)
        if d.text is not before and d.text != before:
            dirty.add(d.pos)


def pass_task(args: tuple[RunSpec, int, int]) -> dict[str, Any]:
    """One pass over one shard; returns (and records as its completion marker) its counts."""
    spec, pass_index, shard_index = args
    from truecost.curate.pipeline import build_steps

    p = spec.plan.passes[pass_index]
    shard = spec.shards[shard_index]
    cpu0 = time.process_time()
    stats = step_stats([*p.maps, *p.dedup, *(["normalize"] if p.apply == "boilerplate" else [])])
    apply, apply_closer = _applier(spec, pass_index, shard, stats)
    steps = build_steps(spec.settings, list(p.maps))
    parts = _Parts(spec.work, p.prefix, shard)
    bad = _BadParts(spec.work, shard) if pass_index == 0 else None
    keys = KeyCollector(spec, p, shard, stats) if p.dedup else None
    lines = _line_counter(p)
    out = DocsWriter(spec.work.path(f"{p.prefix}/docs/s{shard.index:06d}.arrow"), spec.plan.full_text(pass_index))
    read = Counter[str]()
    source = _from_input(spec, shard) if pass_index == 0 else _from_previous(spec, spec.plan.passes[pass_index - 1],
                                                                                shard)
    for batch in source:
        read.update(_count_read(batch, bad))
        # Taken before the previous phase's decision is applied: a document whose boilerplate lines were stripped
        # is changed even when no step of this pass touches it (else the last pass writes its old text).
        originals = {d.pos: d.text for d in batch.docs}
        docs = apply(batch.docs) if apply is not None else batch.docs
        for step in steps:
            docs = run_map(step, docs, stats[step.name])
        parts.drain(stats)
        _mark_changed(docs, originals, batch.dirty)
        if keys is not None:
            keys.add(docs)
        if lines is not None:
            for d in docs:
                lines.add(d.text)
        out.write(docs, batch.dirty, [d.n_bytes for d in docs])
    for closer in (out, parts, bad, keys, apply_closer):
        if closer is not None:
            closer.close()
    boiler = _save_line_counts(spec, p, shard, lines)
    result = {"stats": {k: v.to_dict() for k, v in stats.items()}, "read": dict(read), "rows": out.rows,
              "boilerplate_candidates": boiler, "cpu_seconds": time.process_time() - cpu0}
    spec.work.mark_done(p.prefix, f"s{shard.index:06d}", result)
    return result


class _BadParts:
    """Bad input records: all of them (bad_input.jsonl) and the removed ones (the head of removed.jsonl)."""

    def __init__(self, work: WorkDir, shard: Shard) -> None:
        self.all = JsonlPart(work.path(f"input/bad/s{shard.index:06d}.jsonl"))
        self.removed = JsonlPart(work.path(f"input/removed/s{shard.index:06d}.jsonl"))

    def write(self, record: dict[str, Any]) -> None:
        self.all.write(record)
        if "action" not in record["reason"]:
            self.removed.write(record)

    def close(self) -> None:
        self.all.close()
        self.removed.close()


def _count_read(batch: Batch, bad: _BadParts | None) -> Counter[str]:
    """What reading found (first pass only): documents and bytes, sampled out, bad records by kind."""
    counts: Counter[str] = Counter()
    if bad is None:
        return counts
    counts["records"] += batch.records
    counts["bytes_read"] += batch.bytes_read
    counts["documents"] += len(batch.docs)
    counts["document_bytes"] += sum(d.n_bytes for d in batch.docs)
    counts["sampled_out"] += batch.sampled_out
    counts["sampled_out_bytes"] += batch.sampled_out_bytes
    for removal in batch.bad:
        counts[f"bad:{removal.reason['rule']}"] += 1
        counts["bad_removed"] += "action" not in removal.reason
        bad.write(removal.to_dict())
    return counts


def _line_counter(p: Pass) -> Any:
    if not p.boilerplate:
        return None
    from truecost.curate.steps.normalize import LineCounts

    return LineCounts()


def _save_line_counts(spec: RunSpec, p: Pass, shard: Shard, lines: Any) -> dict[str, int] | None:
    if lines is None:
        return None
    hashes, counts = lines.hashed()
    spec.work.save_array(f"{p.prefix}/lines/s{shard.index:06d}.hashes.npy", hashes)
    spec.work.save_array(f"{p.prefix}/lines/s{shard.index:06d}.counts.npy", counts)
    frequent: dict[str, int] = lines.frequent(spec.settings.normalize)
    return frequent


# -- applying the previous whole-corpus decision ------------------------------------------------------------------
def _applier(spec: RunSpec, pass_index: int, shard: Shard, stats: dict[str, StepStats]) -> tuple[Any, Any]:
    """(function over a batch's documents, object to close at the end) for the pass's `apply`, or Nones."""
    p = spec.plan.passes[pass_index]
    if p.apply == "boilerplate":
        return _boilerplate_applier(spec, spec.plan.passes[pass_index - 1], stats["normalize"]), None
    if p.apply == "dedup":
        previous = spec.plan.passes[pass_index - 1]
        for name in previous.dedup:
            stats.setdefault(name, StepStats(name))
        dedup = DedupApplier(spec, previous, shard, stats, p.prefix)
        return dedup.documents, dedup
    return None, None


def _boilerplate_applier(spec: RunSpec, previous: Pass, st: StepStats) -> Any:
    import json

    from truecost.curate.sources import open_file
    from truecost.curate.steps.normalize import strip_boilerplate

    with open_file(spec.work.path(f"{previous.prefix}/boilerplate.json"), "rb") as fh:
        boiler = set(json.loads(fh.read())["lines"])

    def apply(docs: list[Document]) -> list[Document]:
        before = len(docs), sum(d.n_bytes for d in docs)
        cpu0 = time.process_time()
        kept = strip_boilerplate(docs, boiler, st)
        st.cpu_seconds += time.process_time() - cpu0
        # normalize's counts so far ended at its map; its output is what remains after this.
        st.docs_out -= before[0] - len(kept)
        st.bytes_out -= before[1] - sum(d.n_bytes for d in kept)
        return kept

    return apply


class DedupApplier:
    """Removes the documents the dedup stages decided to remove, writing their records and duplicates.jsonl part."""

    def __init__(self, spec: RunSpec, dedup_pass: Pass, shard: Shard, stats: dict[str, StepStats],
                 prefix: str) -> None:
        from truecost.curate.stages import load_decisions

        self.spec, self.stats = spec, stats
        self.shard_no = spec.shard_no(shard.index)
        self.decisions = load_decisions(spec, dedup_pass)
        self.parts = _Parts(spec.work, prefix, shard)
        self.duplicates = JsonlPart(spec.work.path(f"{prefix}/duplicates/s{shard.index:06d}.jsonl"))
        self.rows = 0
        self.threshold = spec.near_params().threshold if "near" in dedup_pass.dedup else 1.0

    def keep_mask(self, ids: list[str], sizes: list[int], snippets: list[str | None]) -> list[bool]:
        gids = gid_of(self.shard_no, np.arange(self.rows, self.rows + len(ids)))
        self.rows += len(ids)
        cpu0 = time.process_time()
        keep = self.decisions.apply(gids, ids, sizes, snippets, self.stats, self.duplicates)
        share = (time.process_time() - cpu0) / max(1, len(self.decisions.steps))
        for name in self.decisions.steps:
            self.stats[name].cpu_seconds += share
        self.parts.drain(self.stats)
        return keep

    def documents(self, docs: list[Document]) -> list[Document]:
        keep = self.keep_mask([d.id for d in docs], [d.n_bytes for d in docs], [d.text[:200] for d in docs])
        return [d for d, k in zip(docs, keep, strict=True) if k]

    def rows_kept(self, rows: list[Row]) -> list[Row]:
        keep = self.keep_mask([r.id for r in rows], [r.n_bytes for r in rows],
                              [r.text[:200] if r.text else None for r in rows])
        return [r for r, k in zip(rows, keep, strict=True) if k]

    def close(self) -> None:
        self.parts.close()
        self.duplicates.close()
        self.decisions.close()


# -- the final stage ------------------------------------------------------------------------------------------------
def final_task(args: tuple[RunSpec, int]) -> dict[str, Any]:
    """Apply the last dedup decision to one shard and write its kept documents in the input's format."""
    spec, shard_index = args
    shard = spec.shards[shard_index]
    last = spec.plan.passes[-1]
    cpu0 = time.process_time()
    stats = step_stats(last.dedup)
    dedup = DedupApplier(spec, last, shard, stats, "final") if spec.plan.final_apply else None
    kept_docs = kept_bytes = 0

    def kept_rows() -> Iterator[Row]:
        nonlocal kept_docs, kept_bytes
        for rows in read_rows(spec.work.path(f"{last.prefix}/docs/s{shard.index:06d}.arrow")):
            for row in dedup.rows_kept(rows) if dedup is not None else rows:
                kept_docs, kept_bytes = kept_docs + 1, kept_bytes + row.n_bytes
                yield row

    if spec.output:
        write_kept(shard, kept_rows(), join(spec.output, "kept", shard.output_name), spec.settings.text_field)
    else:
        for _ in kept_rows():
            pass
    if dedup is not None:
        dedup.close()
    result = {"stats": {k: v.to_dict() for k, v in stats.items()}, "docs_out": kept_docs, "bytes_out": kept_bytes,
              "cpu_seconds": time.process_time() - cpu0}
    spec.work.mark_done("final", f"s{shard.index:06d}", result)
    return result
