"""The same steps on every executor give the same result, document for document (local, process pool, Ray)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.curate.textgen import article
from truecost.curate.document import Document
from truecost.curate.engine import Executor
from truecost.curate.pipeline import CurateRun, run_curate
from truecost.curate.settings import CurateSettings


def corpus(n: int = 60) -> list[Document]:
    """Articles with exact copies, near copies, PII, a French one and a short one: every step has work."""
    docs = []
    for i in range(n):
        text = article(f"topic{i}")
        if i % 7 == 0:
            text += f"\nContact the office at person{i}@example.com for more details about this."
        docs.append(Document(f"d{i}", text, {"n": i}))
    docs.append(Document("exact-copy", docs[3].text, {}))
    docs.append(Document("near-copy", docs[5].text.replace("The ", "A ", 1), {}))
    docs.append(Document("fr", "Le conseil municipal a décidé que la nouvelle bibliothèque ouvrira au printemps "
                               "prochain, et les habitants sont invités à la fête."))
    docs.append(Document("short", "This line is too short to be a document, although it is English text."))
    return docs


def fingerprint(run: CurateRun) -> dict[str, Any]:
    return {"kept": [(d.id, d.text, d.meta) for d in run.result.kept],
            "removed": [r.to_dict() for r in run.removals],
            "duplicates": run.duplicates(),
            "rules": [dict(st.removed_by_rule) for st in run.result.stats],
            "changes": [dict(st.changes) for st in run.result.stats]}


@pytest.fixture()
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Executor, "chunk_docs", 8)  # many slices, so order and merging are exercised


def test_local_engine_removes_with_every_step(small_slices: None) -> None:
    run = run_curate([], CurateSettings(), docs=corpus())
    steps = {r.id: r.step for r in run.removals}
    assert steps["exact-copy"] == "exact" and steps["near-copy"] == "near"
    assert steps["fr"] == "language" and steps["short"] == "quality"
    assert len(run.result.kept) == 64 - 5  # the four above and one article with repeated 5-grams (d33)
    assert run.result.stats[1].changes["email"] == 9


def test_process_pool_equals_single_process(small_slices: None) -> None:
    one = fingerprint(run_curate([], CurateSettings(), docs=corpus()))
    pool = fingerprint(run_curate([], CurateSettings(), docs=corpus(), workers=2))
    assert pool == one


@pytest.mark.slow
def test_ray_equals_local(small_slices: None) -> None:
    ray = pytest.importorskip("ray")
    local = fingerprint(run_curate([], CurateSettings(), docs=corpus()))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = fingerprint(run_curate([], CurateSettings(), docs=corpus(), engine="ray"))
    finally:
        ray.shutdown()
    assert on_ray == local


def test_dedup_map_reduce_split_equals_the_whole_corpus_functions(shared_data: Path) -> None:
    """The dedup steps compute keys/signatures per slice and cluster on the driver; same answer as one call."""
    from truecost.curate.dedup import find_exact_duplicates, find_near_duplicates
    from truecost.curate.steps.base import StepStats, iter_chunks, run_phase
    from truecost.curate.steps.dedup import ExactDedupStep, NearDedupStep

    rows = [json.loads(line) for line in (shared_data / "dedup_sample" / "corpus.jsonl").open(encoding="utf-8")]
    docs = [Document(r["id"], r["text"]) for r in rows[:400]]
    for step, whole in ((ExactDedupStep(), find_exact_duplicates(docs)), (NearDedupStep(), find_near_duplicates(docs))):
        stats = StepStats(step.name)
        for chunk in iter_chunks(docs, 37):
            run_phase(step, "map", chunk, stats, count_in=True)
        assert len(stats.carry) == len(docs)  # the split path was taken
        kept = run_phase(step, "reduce", docs, stats, count_in=False)
        assert stats.clusters == whole.cluster_of
        assert [r.id for r in stats.removals] == [d.id for d in docs if d.id in whole.removed]
        assert len(kept) == len(docs) - len(whole.removed) and not stats.carry


def test_progress_reports_every_document_once(small_slices: None) -> None:
    seen: dict[str, list[tuple[int, int]]] = {}
    docs = corpus()
    run_curate([], CurateSettings(steps=["normalize", "quality", "exact"]), docs=docs,
               progress=lambda label, done, total: seen.setdefault(label, []).append((done, total)))
    assert sum(d for d, _ in seen["normalize"]) == len(docs) == seen["normalize"][0][1]
    assert sum(d for d, _ in seen["quality+exact"]) == seen["quality+exact"][0][1]
    assert set(seen) == {"normalize", "normalize (whole corpus)", "quality+exact", "exact (whole corpus)"}
