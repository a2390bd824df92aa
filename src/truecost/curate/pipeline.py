"""The curate pipeline end to end: read, run the steps on an engine, write outputs, and say what it saved."""

from __future__ import annotations

import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from truecost.curate.document import Document
from truecost.curate.engine import EngineName, PipelineResult, ProgressFn, make_executor
from truecost.curate.io import Corpus, read_inputs, write_jsonl, write_kept
from truecost.curate.settings import CurateSettings, StepName
from truecost.curate.steps.base import Removal, Step, StepStats


def build_steps(settings: CurateSettings, steps: list[StepName] | None = None) -> list[Step]:
    """The step objects for `steps` (default: the settings' list), each configured from `settings`."""
    from truecost.curate.steps.dedup import ExactDedupStep, NearDedupStep
    from truecost.curate.steps.language import LanguageStep
    from truecost.curate.steps.normalize import NormalizeStep
    from truecost.curate.steps.pii import PiiStep
    from truecost.curate.steps.quality import QualityStep

    makers: dict[str, Any] = {
        "normalize": lambda: NormalizeStep(settings.normalize),
        "pii": lambda: PiiStep(settings.pii),
        "language": lambda: LanguageStep(settings.language),
        "quality": lambda: QualityStep(settings.quality),
        "exact": lambda: ExactDedupStep(settings.exact),
        "near": lambda: NearDedupStep(settings.near, settings.dedup_index_dir),
    }
    return [makers[name]() for name in (steps or settings.steps)]


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def in_sample(doc_id: str, fraction: float) -> bool:
    """Deterministic sample membership from a hash of the id, so a dry run is repeatable."""
    import xxhash

    return xxhash.xxh64_intdigest(doc_id.encode("utf-8", "surrogatepass")) < fraction * 2.0**64


@dataclass
class CurateRun:
    """What one run did, in memory; `report()` is its JSON form."""

    corpus: Corpus
    result: PipelineResult
    settings: CurateSettings
    engine: str
    workers: int
    cpu_seconds: float
    wall_seconds: float
    read_cpu_seconds: float
    dry_run: bool = False
    sample_fraction: float = 1.0
    sample_bytes: int = 0
    total_bytes: int = 0
    total_docs: int = 0
    docs_processed: int = 0
    config: Any = None
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def removals(self) -> list[Removal]:
        """Every removal: bad input first, then each step's, in step order."""
        out = [b for b in self.corpus.bad if "action" not in b.reason]
        for st in self.result.stats:
            out.extend(st.removals)
        return out

    def duplicates(self) -> list[dict[str, Any]]:
        """One record per input document: its duplicate cluster (or None) and whether dedup removed it."""
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            while parent.get(x, x) != x:
                parent[x] = parent.get(parent[x], parent[x])
                x = parent[x]
            return x

        # Clusters of the exact and near steps are joined: a near cluster may absorb an exact one.
        for st in self.result.stats:
            for doc_id, cluster in st.clusters.items():
                if cluster is not None:
                    a, b = find(doc_id), find(cluster)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
        dedup_removed = {r.id for st in self.result.stats if st.step in ("exact", "near") for r in st.removals}
        removed_by = {r.id: r.step for r in self.removals}
        in_cluster = {x for st in self.result.stats for x, c in st.clusters.items() if c is not None}
        in_cluster |= {c for st in self.result.stats for c in st.clusters.values() if c is not None}
        ids = [doc.id for doc in self.corpus.docs] + [b.id for b in self.corpus.bad if "action" not in b.reason]
        return [{"id": i, "cluster": find(i) if i in in_cluster else None, "removed": i in dedup_removed,
                 "removed_by": removed_by.get(i)} for i in ids]

    def report(self, config: Any = None) -> dict[str, Any]:
        from truecost.curate.report import build_report

        return build_report(self, config)


def run_curate(inputs: list[Path], settings: CurateSettings, *, output_dir: Path | None = None,
               engine: EngineName = "local", workers: int = 1, dry_run: bool = False, sample: float = 0.01,
               progress: ProgressFn | None = None, docs: list[Document] | None = None,
               config: Any = None) -> CurateRun:
    """Run the pipeline over `inputs` (or over `docs` given directly) and write outputs to `output_dir`.

    With `dry_run`, only a deterministic `sample` fraction of documents is processed, nothing but the report is
    written, and the report scales the sample's figures to the whole input.
    """
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    if docs is None:
        corpus = read_inputs(inputs, settings.text_field, settings.id_field, settings.max_doc_bytes)
    else:
        corpus = Corpus(docs=list(docs), bytes_read=sum(d.n_bytes for d in docs))
    read_cpu = _cpu_seconds() - cpu0
    total_docs, total_bytes = len(corpus.docs), sum(d.n_bytes for d in corpus.docs)
    work = corpus.docs
    if dry_run:
        work = [d for d in corpus.docs if in_sample(d.id, sample)]
    sample_bytes = sum(d.n_bytes for d in work)
    executor = make_executor(engine, workers)
    try:
        # Steps change documents in place; the run works on copies so `corpus.docs` keeps the input as read.
        work = [Document(d.id, d.text, d.meta) for d in work]
        result = executor.run(build_steps(settings), work, progress)
    finally:
        executor.close()
    run = CurateRun(corpus=corpus, result=result, settings=settings, engine=engine, workers=workers,
                    cpu_seconds=_cpu_seconds() - cpu0, wall_seconds=time.perf_counter() - wall0,
                    read_cpu_seconds=read_cpu, dry_run=dry_run, sample_fraction=sample if dry_run else 1.0,
                    sample_bytes=sample_bytes, total_bytes=total_bytes, total_docs=total_docs,
                    docs_processed=len(work), config=config)
    if engine == "ray":
        # Ray workers are not this process's children: add the CPU time the steps measured inside them.
        run.cpu_seconds += sum(st.cpu_seconds for st in result.stats)
    if output_dir is not None:
        write_outputs(run, output_dir)
    return run


def write_outputs(run: CurateRun, out_dir: Path) -> dict[str, Any]:
    """Kept documents (not for a dry run), removed.jsonl, duplicates.jsonl, bad_input.jsonl, report.json/html."""
    import json

    from truecost.curate.report import render_html

    out_dir.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, str] = {}
    if not run.dry_run:
        for path in write_kept(run.corpus, run.result.kept, out_dir, run.settings.text_field):
            outputs[f"kept:{path.name}"] = str(path)
        write_jsonl(out_dir / "removed.jsonl", (r.to_dict() for r in run.removals))
        write_jsonl(out_dir / "duplicates.jsonl", run.duplicates())
        write_jsonl(out_dir / "bad_input.jsonl", (b.to_dict() for b in run.corpus.bad))
        outputs.update({name: str(out_dir / f"{name}.jsonl") for name in ("removed", "duplicates", "bad_input")})
    outputs["report_json"] = str(out_dir / "report.json")
    outputs["report_html"] = str(out_dir / "report.html")
    run.outputs = outputs
    report = run.report()
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(report), encoding="utf-8")
    return report


def bad_input_counts(corpus: Corpus) -> dict[str, int]:
    """How many records of each bad-input kind were seen."""
    return dict(sorted(Counter(b.reason["rule"] for b in corpus.bad).items()))


def step_summaries(stats: list[StepStats]) -> list[dict[str, Any]]:
    """Each step's summary, in order."""
    return [st.summary() for st in stats]
