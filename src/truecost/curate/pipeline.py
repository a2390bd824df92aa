"""The curate pipeline end to end, streaming: list the shards, run the passes and whole-corpus stages on an
engine, write the outputs shard by shard, and say what it saved.

Memory is bounded by a batch, a shard's dedup keys and the dedup decisions, never by the corpus. Every task marks
itself done in `OUT/_work`, so a killed run restarted with the same command skips what was finished; the output
folder's `_COMPLETE` marker is cleared first and written last.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import resource
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from truecost.config import Config
from truecost.curate import stages
from truecost.curate.document import Document
from truecost.curate.engine import EngineName, Executor, ProgressFn, make_executor
from truecost.curate.passes import RunSpec, final_task, pass_task
from truecost.curate.plan import make_plan
from truecost.curate.settings import CurateSettings, StepName
from truecost.curate.sources import Shard, filesystem, is_url, join, list_shards
from truecost.curate.steps.base import Removal, Step, StepStats
from truecost.curate.workdir import WORK_DIR, WorkDir, write_bytes
from truecost.errors import UserError

if TYPE_CHECKING:
    from truecost.ledger import Ledger, Meter

FORMAT_VERSION = 1
OUTPUT_FILES = ("kept", "removed.jsonl", "duplicates.jsonl", "bad_input.jsonl", "report.json", "report.html",
                "manifest.json")
_PARTITION_BYTES = 256 << 20  # input bytes per dedup partition: bounds one dedup task's memory


def build_steps(settings: CurateSettings, steps: list[StepName] | None = None) -> list[Step]:
    """The per-document step objects for `steps` (default: the settings' list), each configured from `settings`."""
    from truecost.curate.steps.language import LanguageStep
    from truecost.curate.steps.normalize import NormalizeStep
    from truecost.curate.steps.pii import PiiStep
    from truecost.curate.steps.quality import QualityStep

    makers: dict[str, Any] = {
        "normalize": lambda: NormalizeStep(settings.normalize),
        "pii": lambda: PiiStep(settings.pii),
        "language": lambda: LanguageStep(settings.language),
        "quality": lambda: QualityStep(settings.quality),
    }
    return [makers[name]() for name in (steps or settings.steps) if name in makers]


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its largest child, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


def in_sample(doc_id: str, fraction: float) -> bool:
    """Deterministic sample membership from a hash of the id, so a dry run is repeatable."""
    import xxhash

    return xxhash.xxh64_intdigest(doc_id.encode("utf-8", "surrogatepass")) < fraction * 2.0**64


@dataclass
class PipelineResult:
    """Documents that remain (read back from the output) and each step's stats, in step order."""

    kept: list[Document]
    stats: list[StepStats] = field(default_factory=list)


@dataclass
class CurateRun:
    """What one run did: counts and stats in memory, documents and removals on disk (read back on demand)."""

    settings: CurateSettings
    shards: list[Shard]
    stats: list[StepStats]
    read: dict[str, int]
    docs_out: int
    bytes_out: int
    engine: str
    workers: int
    cpu_seconds: float
    wall_seconds: float
    read_cpu_seconds: float
    output_dir: str
    dry_run: bool = False
    sample_fraction: float = 1.0
    config: Config | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    nodes: int = 1
    peak_rss_mb: float = 0.0
    dedup_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    docs_per_shard: list[tuple[int, int]] = field(default_factory=list)  # (kept documents, kept bytes)
    docs_read_per_shard: list[int] = field(default_factory=list)
    ledger_run_id: str | None = None  # the ledger run that recorded this one, when `run_curate` had a ledger

    @property
    def docs_processed(self) -> int:
        return self.read.get("documents", 0)

    @property
    def sample_bytes(self) -> int:
        return self.read.get("document_bytes", 0)

    @property
    def total_docs(self) -> int:
        return self.docs_processed + self.read.get("sampled_out", 0)

    @property
    def total_bytes(self) -> int:
        return self.sample_bytes + self.read.get("sampled_out_bytes", 0)

    def kept_documents(self) -> list[Document]:
        """The kept documents, read back from the output (for small runs and tests; a corpus stays on disk)."""
        from truecost.curate.readers import read_shard

        if not self.output_dir or self.dry_run:
            return []
        docs: list[Document] = []
        s = self.settings
        for shard in self.shards:
            kept = Shard(shard.index, join(self.output_dir, "kept", shard.output_name), shard.kind, shard.compression,
                         shard.output_name, 0, "")
            for batch in read_shard(kept, s.text_field, s.id_field, max_doc_bytes=1 << 62):
                docs.extend(batch.docs)
        return docs

    @property
    def result(self) -> PipelineResult:
        return PipelineResult(self.kept_documents(), self.stats)

    @property
    def removals(self) -> list[Removal]:
        """Every removal, as in removed.jsonl: bad input first, then each step's, in step order."""
        return [Removal(r["id"], r["step"], r["reason"]) for r in self._jsonl("removed.jsonl")]

    def duplicates(self) -> list[dict[str, Any]]:
        """The records of duplicates.jsonl: every document in a duplicate cluster, removed or kept."""
        return self._jsonl("duplicates.jsonl")

    def _jsonl(self, name: str) -> list[dict[str, Any]]:
        from truecost.curate.workdir import iter_jsonl

        if not self.output_dir:
            return []
        return [json.loads(line) for line in iter_jsonl(join(self.output_dir, name))]

    def report(self, config: Config | None = None) -> dict[str, Any]:
        """The report as one JSON-ready dict, priced with `config` (None: the run's own config, else defaults)."""
        from truecost.curate.report import build_report

        return build_report(self, config)


class _Stages:
    """Runs a stage's tasks on the executor, skipping those a previous run already marked done."""

    def __init__(self, executor: Executor, work: WorkDir, progress: ProgressFn | None) -> None:
        self.executor, self.work, self.progress = executor, work, progress
        self.counts: Counter[str] = Counter()

    def run(self, stage: str, fn: Any, tasks: list[tuple[str, Any]], label: str) -> list[dict[str, Any]]:
        results: list[dict[str, Any] | None] = [self.work.done(stage, name) for name, _ in tasks]
        todo = [i for i, r in enumerate(results) if r is None]
        self.counts["tasks_skipped"] += len(tasks) - len(todo)
        self.counts["tasks_run"] += len(todo)
        if self.progress and len(todo) < len(tasks):
            self.progress(label, len(tasks) - len(todo), len(tasks))
        for i, result in zip(todo, self.executor.map(fn, [tasks[i][1] for i in todo], label, self.progress),
                             strict=True):
            results[i] = result
        return [r for r in results if r is not None]


def _merge(stats: dict[str, StepStats], results: list[dict[str, Any]]) -> None:
    for result in results:
        for name, data in result.get("stats", {}).items():
            stats.setdefault(name, StepStats(name)).merge(StepStats.from_dict(data))


def _sum_counts(results: list[dict[str, Any]], key: str = "counts") -> dict[str, int]:
    total: Counter[str] = Counter()
    for r in results:
        total.update({k: v for k, v in r.get(key, {}).items() if isinstance(v, int)})
    return dict(total)


def _dedup_stages(runner: _Stages, spec: RunSpec, pass_index: int, stats: dict[str, StepStats]
                  ) -> dict[str, dict[str, int]]:
    """Exact then near over the keys pass `pass_index` collected; their counts by step."""
    p = spec.plan.passes[pass_index]
    prefix, parts = spec.dedup_prefix(pass_index), range(spec.partitions)
    found: dict[str, dict[str, int]] = {}
    stage_runs: list[tuple[str, str, Any, list[tuple[str, Any]]]] = []
    if "exact" in p.dedup:
        stage_runs.append(("exact", f"{prefix}-exact", stages.exact_task,
                           [(f"p{i:04d}", (spec, pass_index, i)) for i in parts]))
    if "near" in p.dedup:
        stage_runs += [
            ("near", f"{prefix}-near-buckets", stages.near_bucket_task,
             [(f"p{i:04d}", (spec, pass_index, i)) for i in parts]),
            ("near", f"{prefix}-near-verify", stages.near_verify_task,
             [(f"v{i:04d}", (spec, pass_index, i)) for i in parts]),
            ("near", f"{prefix}-near-components", stages.near_components_task, [("all", (spec, pass_index))]),
            ("near", f"{prefix}-near-split", stages.near_split_task,
             [(f"r{i:04d}", (spec, pass_index, i)) for i in parts]),
        ]
    for step, stage, fn, tasks in stage_runs:
        results = runner.run(stage, fn, tasks, f"{step}: {stage.split('-', 1)[1]}")
        stats[step].cpu_seconds += sum(r.get("cpu_seconds", 0.0) for r in results)
        found.setdefault(step, {}).update(_sum_counts(results))
    return found


def _boilerplate(runner: _Stages, spec: RunSpec, pass_index: int, results: list[dict[str, Any]],
                 stats: dict[str, StepStats]) -> None:
    candidates = sorted({line for r in results for line in (r.get("boilerplate_candidates") or {})})
    docs = stats["normalize"].docs_out
    done = runner.run(f"{spec.plan.passes[pass_index].prefix}-boilerplate", stages.boilerplate_task,
                      [("all", (spec, pass_index, candidates, docs))], "normalize: boilerplate")
    stats["normalize"].changes["boilerplate_distinct_lines"] += done[0]["lines"]
    stats["normalize"].cpu_seconds += done[0]["cpu_seconds"]


def _fingerprint(shards: list[Shard], settings: CurateSettings, spec_bits: dict[str, Any]) -> str:
    """What a resumed run must match: the inputs (size, mtime), the settings and the partitioning."""
    payload = {"version": FORMAT_VERSION, "inputs": [[s.url, s.size, s.modified] for s in shards],
               "settings": settings.model_dump(mode="json"), **spec_bits}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _check_apart(inputs: list[str], output: str) -> None:
    """Refuse an output whose cleared parts hold an input, or that lies inside one: a fresh run clears `kept/`
    (curating `out/kept/x.jsonl -o out` deleted the input before reading it), and outputs written inside an
    input folder are read back as input by the next run."""
    if is_url(output) and not output.startswith("file://"):
        return
    out = Path(filesystem(output)[1]).resolve()
    for given in inputs:
        if is_url(given) and not given.startswith("file://"):
            continue
        source = Path(filesystem(given)[1]).resolve()
        cleared = (out / name for name in (WORK_DIR, *OUTPUT_FILES))
        if out.is_relative_to(source) or any(source.is_relative_to(c) for c in cleared):
            raise UserError(f"--output {output} and input {given} overlap; write the output to a folder "
                            "outside the inputs")


@contextlib.contextmanager
def _output_lock(output: str) -> Iterator[None]:
    """Hold an exclusive lock on a local output folder for the whole run: two runs writing one folder at once
    delete each other's work files (one crashed, the other could mark a mix complete). The OS drops the lock when
    the process dies, kill -9 included, so a rerun resumes. Object stores (s3://...) are not locked."""
    if is_url(output) and not output.startswith("file://"):
        yield
        return
    root = filesystem(output)[1]
    if os.path.exists(root) and not os.path.isdir(root):
        raise UserError(f"output {output} exists and is not a folder")
    try:
        os.makedirs(root, exist_ok=True)
        fd = os.open(root, os.O_RDONLY)
    except OSError as exc:  # a file on the path, a read-only or virtual file system
        raise UserError(f"cannot create output folder {output}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise UserError(f"output {output} is being written by another curate run; wait for it to finish "
                            "or choose another --output") from exc
        yield
    finally:
        os.close(fd)


def _prepare_output(output: str, fingerprint: str) -> tuple[WorkDir, bool]:
    """Clear the completion marker, then resume the work folder if it belongs to this same run, else start
    fresh (removing the outputs of an earlier run in this folder). Returns (work folder, resumed)."""
    fs, root = filesystem(output)
    if fs.exists(root) and not fs.isdir(root):
        raise UserError(f"output {output} exists and is not a folder")
    fs.makedirs(root, exist_ok=True)
    _clear_complete(output)
    work = WorkDir(join(output, WORK_DIR))
    plan_url = work.path("plan.json")
    try:
        with fs.open(filesystem(plan_url)[1], "rb") as fh:
            resumed = json.loads(fh.read()).get("fingerprint") == fingerprint
    except (FileNotFoundError, json.JSONDecodeError):
        resumed = False
    if not resumed:
        for name in (WORK_DIR, *OUTPUT_FILES):
            path = join(root, name)
            if fs.exists(path):
                fs.rm(path, recursive=True)
        write_bytes(plan_url, json.dumps({"fingerprint": fingerprint}).encode())
    return work, resumed


def _clear_complete(output: str) -> None:
    from truecost.outputs import COMPLETE_MARKER, clear_complete

    if is_url(output) and not output.startswith("file://"):
        fs, root = filesystem(output)
        marker = join(root, COMPLETE_MARKER)
        if fs.exists(marker):
            fs.rm(marker)
    else:
        clear_complete(filesystem(output)[1])


def _mark_complete(output: str, info: dict[str, Any]) -> None:
    from truecost.outputs import COMPLETE_MARKER, mark_complete

    if is_url(output) and not output.startswith("file://"):
        from datetime import UTC, datetime

        write_bytes(join(output, COMPLETE_MARKER),
                    json.dumps({"completed_at": datetime.now(UTC).isoformat(), **info}, indent=2).encode())
    else:
        mark_complete(filesystem(output)[1], **info)


def _docs_as_input(docs: list[Document], settings: CurateSettings, folder: str) -> str:
    """Documents given directly (Python API) written as one JSONL shard, so they take the same path as a file."""
    path = Path(folder) / "documents.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for d in docs:
            record = {settings.id_field: d.id, **d.meta, settings.text_field: d.text}
            fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    return str(path)


def _partitions(shards: list[Shard], executor: Executor) -> int:
    # Compressed inputs hold about four times their size in text.
    text_bytes = sum(s.size * (4 if s.compression else 1) for s in shards)
    return max(executor.parallelism, math.ceil(text_bytes / _PARTITION_BYTES), 1)


def run_curate(inputs: list[Path] | list[str], settings: CurateSettings, *, output_dir: Path | str | None = None,
               engine: EngineName = "local", workers: int = 1, dry_run: bool = False, sample: float = 0.01,
               progress: ProgressFn | None = None, docs: list[Document] | None = None,
               config: Config | None = None, ledger: Ledger | None = None, parent_id: str | None = None) -> CurateRun:
    """Run the pipeline over `inputs` (or over `docs` given directly) and write outputs to `output_dir`.

    Without `output_dir` the outputs go to a temporary folder (`run.output_dir`). With `dry_run`, only a
    deterministic `sample` fraction of documents is processed, nothing but the report is written, and the report
    scales the sample's figures to the whole input. `config` prices the run (None: the defaults). With `ledger`,
    the run is recorded there (kind "curate", under `parent_id` when given; `run.ledger_run_id` names it) with
    what it removed and saved (see `ledger_results`); without, nothing is recorded.
    """
    def curate() -> CurateRun:
        return _curate(inputs, settings, output_dir, engine, workers, dry_run, sample, progress, docs, config)

    if ledger is None:
        return curate()
    cfg = config if config is not None else Config()
    params = {"inputs": [str(i) for i in inputs], "steps": settings.steps, "engine": engine, "workers": workers,
              "dry_run": dry_run, "sample": sample if dry_run else None}
    name = ("dry-run " if dry_run else "") + (", ".join(str(p).rstrip("/").rsplit("/", 1)[-1] for p in inputs)
                                             or "documents")[:120]
    with ledger.run("curate", name, params=params, prices=cfg.compute_prices(), parent_id=parent_id) as meter:
        run = curate()
        record(meter, run.report(), output_dir)
    run.ledger_run_id = meter.id
    return run


def ledger_results(report: dict[str, Any], output_dir: Path | str | None) -> dict[str, Any]:
    """What a curate run leaves in its ledger record's `results` (the TCO reads `tokens_removed_fraction` and
    `tokens_removed`: see `truecost.estimate.tco_ledger`)."""
    return {"docs_in": report["totals"]["docs_in"], "docs_out": report["totals"]["docs_out"],
            "tokens_removed": report["savings"]["tokens_removed"],
            "tokens_removed_fraction": report["totals"]["tokens_removed_fraction"],
            "usd_saved_per_training_run": report["savings"]["usd_saved_per_training_run"],
            "bad_input": report["input"]["bad_input"], "output": str(output_dir or "")}


def record(meter: Meter, report: dict[str, Any], output_dir: Path | str | None) -> None:
    """Put a finished run's report on its ledger meter: tokens in, and `ledger_results`."""
    meter.tokens = report["totals"]["tokens_in"]
    meter.results.update(ledger_results(report, output_dir))


def _curate(inputs: list[Path] | list[str], settings: CurateSettings, output_dir: Path | str | None,
            engine: EngineName, workers: int, dry_run: bool, sample: float, progress: ProgressFn | None,
            docs: list[Document] | None, config: Config | None) -> CurateRun:
    """`run_curate` without the ledger: list the shards, run the stages, finish the outputs."""
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    scratch = tempfile.mkdtemp(prefix="truecost-curate-")
    try:
        if docs is not None:
            inputs = [_docs_as_input(docs, settings, scratch)]
        shards = list_shards([str(i) for i in inputs])
        if not shards:
            raise UserError("no input given")
        output = str(output_dir) if output_dir is not None and not dry_run else join(scratch, "out")
        if output_dir is None and not dry_run:
            output = tempfile.mkdtemp(prefix="truecost-curate-out-")
        _check_apart([*map(str, inputs), *(s.url for s in shards)], output)
        with _output_lock(output):
            executor = make_executor(engine, workers)
            try:
                run = _run(shards, settings, output, executor, engine, workers, dry_run, sample, progress, config)
            finally:
                executor.close()
            run.cpu_seconds = _cpu_seconds() - cpu0 + (sum(st.cpu_seconds for st in run.stats)
                                                       if engine == "ray" else 0.0)
            run.wall_seconds = time.perf_counter() - wall0
            run.peak_rss_mb = peak_rss_mb()
            if dry_run:
                run.output_dir = ""
            _finish(run, output_dir, output, dry_run)
        return run
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(shards: list[Shard], settings: CurateSettings, output: str, executor: Executor, engine: str, workers: int,
         dry_run: bool, sample: float, progress: ProgressFn | None, config: Config | None) -> CurateRun:
    plan = make_plan(settings)
    partitions = _partitions(shards, executor)
    segments = _index_segments(settings)
    fingerprint = _fingerprint(shards, settings, {"partitions": partitions, "dry_run": dry_run,
                                                  "sample": sample if dry_run else None,
                                                  "index": [s.url for s in segments]})
    work, _ = _prepare_output(output, fingerprint)
    spec = RunSpec(work, "" if dry_run else output, tuple(shards), settings, plan, partitions, tuple(segments),
                   sample if dry_run else None)
    runner = _Stages(executor, work, progress)
    stats: dict[str, StepStats] = {name: StepStats(name) for name in settings.steps}
    read: Counter[str] = Counter()
    dedup_counts: dict[str, dict[str, int]] = {}
    read_cpu = 0.0
    per_shard: list[int] = []
    for p in plan.passes:
        results = runner.run(p.prefix, pass_task, [(f"s{s.index:06d}", (spec, p.index, s.index)) for s in shards],
                             " + ".join([*p.maps, *p.dedup]) or "apply")
        _merge(stats, results)
        if p.index == 0:
            for r in results:
                read.update(r["read"])
                per_shard.append(r["read"].get("documents", 0) + r["read"].get("sampled_out", 0))
            if not read.get("records"):
                work.remove()
                raise UserError(f"nothing was read: {', '.join(s.url for s in shards)} "
                                f"{'holds' if len(shards) == 1 else 'hold'} no records")
            read_cpu = sum(r["cpu_seconds"] for r in results)
        if p.boilerplate:
            _boilerplate(runner, spec, p.index, results, stats)
        if p.dedup:
            dedup_counts.update(_dedup_stages(runner, spec, p.index, stats))
    finals = runner.run("final", final_task, [(f"s{s.index:06d}", (spec, s.index)) for s in shards], "write kept")
    _merge(stats, finals)
    if not dry_run:
        runner.run("collect", stages.collect_task, [("all", (spec,))], "collect")
        _update_index(spec, work, settings)
    for step, counts in dedup_counts.items():
        stats[step].changes.update(counts)
    nodes = len(getattr(executor, "nodes", set())) or 1
    return CurateRun(settings=settings, shards=shards, stats=[stats[n] for n in settings.steps], read=dict(read),
                     docs_out=sum(r["docs_out"] for r in finals), bytes_out=sum(r["bytes_out"] for r in finals),
                     engine=engine, workers=workers, cpu_seconds=0.0, wall_seconds=0.0, read_cpu_seconds=read_cpu,
                     output_dir=output, dry_run=dry_run, sample_fraction=sample if dry_run else 1.0, config=config,
                     tasks=dict(runner.counts), nodes=nodes, dedup_counts=dedup_counts,
                     docs_per_shard=[(r["docs_out"], r["bytes_out"]) for r in finals],
                     docs_read_per_shard=per_shard)


def _index_segments(settings: CurateSettings) -> list[Any]:
    if settings.dedup_index_dir is None or "near" not in settings.steps:
        return []
    from truecost.curate.dedup import NearDedupParams
    from truecost.curate.dedup.index import NearIndex
    from truecost.curate.dedup.store import IndexSegment

    params = NearDedupParams(**{k: v for k, v in settings.near.items() if k != "update_index"})
    index = NearIndex.load(Path(settings.dedup_index_dir), params, lazy=True)
    return [IndexSegment(str(file), i, docs) for i, (file, docs) in enumerate(index.segment_files())]


def _update_index(spec: RunSpec, work: WorkDir, settings: CurateSettings) -> None:
    """Add this run's near-dedup participants to the on-disk index (one segment per shard)."""
    if settings.dedup_index_dir is None or "near" not in settings.steps or not settings.near.get("update_index", 1):
        return
    from truecost.curate.index_update import append_run

    append_run(spec, Path(settings.dedup_index_dir))


def _finish(run: CurateRun, output_dir: Path | str | None, output: str, dry_run: bool) -> None:
    """Report, manifest and the completion marker (last); the work folder goes once the outputs are whole."""
    from truecost.curate.report import render_html

    target = str(output_dir) if output_dir is not None else ("" if dry_run else output)
    if not target:
        return
    if dry_run:
        fs, root = filesystem(target)
        fs.makedirs(root, exist_ok=True)
        _clear_complete(target)
    names = ["report.json", "report.html"] + ([] if dry_run else ["removed.jsonl", "duplicates.jsonl",
                                                                   "bad_input.jsonl", "manifest.json"])
    run.outputs = {name.replace(".", "_") if name.startswith("report") else name.split(".")[0]: join(target, name)
                   for name in names}
    if not dry_run:
        for shard in run.shards:
            run.outputs[f"kept:{shard.output_name}"] = join(target, "kept", shard.output_name)
        write_bytes(join(target, "manifest.json"), json.dumps(_manifest(run), indent=1).encode())
    report = run.report()
    write_bytes(join(target, "report.json"), (json.dumps(report, indent=2, default=str) + "\n").encode())
    write_bytes(join(target, "report.html"), render_html(report).encode())
    if not dry_run:
        WorkDir(join(target, WORK_DIR)).remove()
    _mark_complete(target, {"kind": "curate", "docs_in": run.docs_processed, "docs_out": run.docs_out})


def _manifest(run: CurateRun) -> dict[str, Any]:
    """The output shards and files: deterministic (no timings), so two runs can be compared byte for byte."""
    return {
        "format": "truecost-curate-output", "version": FORMAT_VERSION,
        "steps": list(run.settings.steps),
        "shards": [{"input": s.url, "format": s.kind, "kept": f"kept/{s.output_name}", "docs_kept": docs,
                    "bytes_kept": size} for s, (docs, size) in zip(run.shards, run.docs_per_shard, strict=True)],
        "files": {"removed": "removed.jsonl", "duplicates": "duplicates.jsonl", "bad_input": "bad_input.jsonl",
                  "report": "report.json"},
    }
