"""curate vs datatrove: MB of text per CPU-second and peak memory, same corpus, same run.

(a) Gopher quality + Gopher repetition + C4 filtering: datatrove's filters vs `truecost curate --steps quality`.
    Two datatrove set-ups: its defaults as in its README example, and as its docs advise for the same job (the
    same four rule sets, cheap page tests first); the headline ratio uses the advised one.
(b) exact+near dedup through the whole CLI (`truecost curate --steps exact,near`: read, dedup, write every
    output) vs datatrove's 4-stage MinHash (defaults: word 5-grams, 14 buckets x 8 hashes).
Each job runs `--repeats` times (default 3); the tables give medians and ranges, never the best run.

Both tools run compiled (truecost's package is byte-compiled once before timing, as pip compiles datatrove's).
Each job runs in its own child process; its CPU time (user + system, including any processes it waited for) and
peak RSS come from `os.wait4`, so other programs' CPU time is not counted (their load still slows ours through
shared cores and caches: compare runs made at the same time, never across hours). The
corpus is real text found on this machine: the shared dedup sample (if present) plus the plain-text
documentation (pydoc) of Python's standard library. datatrove lives in its own venv, `bench/.venv-datatrove`,
created on first run (datatrove 0.10.1 + spaCy: datatrove's English word tokenizer is `spacy.blank("en")`, which
needs no model download).

Run: `.venv/bin/python bench/curate_vs_datatrove.py [--docs-mb 4] [--json]`
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import _peer  # bench/ is on sys.path when a bench runs as a script

ROOT = Path(__file__).resolve().parents[1]
PEER_VENV = ROOT / "bench" / ".venv-datatrove"
# orjson: datatrove's JsonlReader needs it but no datatrove extra we use pulls it in.
PEER_PACKAGES = ["datatrove[processing]==0.10.1", "spacy>=3.7,<4", "orjson"]
SHARED_SAMPLE = ROOT.parent / "shared" / "data" / "dedup_sample" / "corpus.jsonl"
TRUECOST_PYTHON = Path(sys.executable)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peer_python() -> Path:
    """The datatrove venv's interpreter, creating the venv on first use."""
    return _peer.peer_python(PEER_VENV, PEER_PACKAGES, "import datatrove, orjson, spacy; spacy.blank('en')")


# Written by a child interpreter so importing ~200 stdlib modules never touches this process.
PYDOC_DUMP = r"""
import importlib, io, json, pydoc, sys, contextlib, warnings
warnings.simplefilter("ignore")
limit = int(sys.argv[2]); total = 0
skip = ("test", "idlelib", "tkinter", "turtle", "this", "antigravity", "lib2to3", "ensurepip", "venv", "pydoc")
with open(sys.argv[1], "w", encoding="utf-8") as out:
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name.startswith(skip) or total >= limit:
            continue
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                module = importlib.import_module(name)
                text = pydoc.render_doc(module, renderer=pydoc.plaintext)
        except BaseException:
            continue
        # One document per top-level section keeps documents at a realistic size (a few KB to ~100 KB).
        for i, part in enumerate(text.split("\n\n\n")):
            if len(part.split()) >= 20:
                out.write(json.dumps({"id": f"pydoc:{name}:{i}", "text": part}) + "\n")
                total += len(part.encode("utf-8"))
"""


def build_corpus(path: Path, docs_mb: float) -> tuple[int, int]:
    """JSONL of real text: the dedup sample plus pydoc text of the standard library; returns (docs, text bytes)."""
    pydoc_file = path.with_suffix(".pydoc.jsonl")
    subprocess.run([sys.executable, "-c", PYDOC_DUMP, str(pydoc_file), str(int(docs_mb * 1e6))], check=True,
                   capture_output=True)
    docs = text_bytes = 0
    with path.open("w", encoding="utf-8") as out:
        sources = [SHARED_SAMPLE] if SHARED_SAMPLE.exists() else []
        for source in [*sources, pydoc_file]:
            for line in source.open(encoding="utf-8"):
                record = json.loads(line)
                out.write(json.dumps({"id": record["id"], "text": record["text"]}) + "\n")
                docs += 1
                text_bytes += len(record["text"].encode("utf-8"))
    pydoc_file.unlink()
    return docs, text_bytes


DATATROVE_QUALITY = """
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter, GopherRepetitionFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
src, work = sys.argv[1], sys.argv[2]
LocalPipelineExecutor(pipeline=[
    JsonlReader(src, glob_pattern="corpus.jsonl"),
    GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(),
    JsonlWriter(f"{work}/kept", compression=None),
], tasks=1, workers=1, logging_dir=f"{work}/logs").run()
"""

# The same job as `truecost curate --steps quality` (Gopher quality + repetition, C4, FineWeb), set up as
# datatrove's own docs advise: cheap whole-page tests first (its LambdaFilter), so pages with a `{` or "lorem
# ipsum" leave before spaCy tokenises them for the Gopher filters.
DATATROVE_QUALITY_ADVISED = """
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter, LambdaFilter)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
src, work = sys.argv[1], sys.argv[2]
LocalPipelineExecutor(pipeline=[
    JsonlReader(src, glob_pattern="corpus.jsonl"),
    LambdaFilter(lambda doc: "{" not in doc.text and "lorem ipsum" not in doc.text.lower()),
    GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(), FineWebQualityFilter(),
    JsonlWriter(f"{work}/kept", compression=None),
], tasks=1, workers=1, logging_dir=f"{work}/logs").run()
"""

DATATROVE_MINHASH = """
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                              MinhashDedupFilter)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
src, work = sys.argv[1], sys.argv[2]
config = MinhashConfig()
read = lambda: JsonlReader(src, glob_pattern="corpus.jsonl")
def run(pipeline, name, tasks=1):
    LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=f"{work}/logs/{name}").run()
run([read(), MinhashDedupSignature(output_folder=f"{work}/sigs", config=config)], "sigs")
run([MinhashDedupBuckets(input_folder=f"{work}/sigs", output_folder=f"{work}/buckets", config=config)], "buckets",
    tasks=config.num_buckets)
run([MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/remove_ids", config=config,
                         save_cluster_id=True)], "cluster")
# Cluster ids and removed documents are written too, so the run can be scored like ours (duplicates.jsonl).
run([read(), MinhashDedupFilter(input_folder=f"{work}/remove_ids", load_cluster_ids=True,
                                exclusion_writer=JsonlWriter(f"{work}/removed", compression=None)),
     JsonlWriter(f"{work}/kept", compression=None)], "filter")
"""

@dataclass
class Measurement:
    """One child process: CPU-seconds (user+system), peak resident memory, and documents it kept."""

    job: str
    tool: str
    cpu_s: float
    peak_rss_mb: float
    docs_kept: int | None
    status: str = "ok"


def run_measured(cmd: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """Run `cmd`; CPU-seconds and peak RSS (MB) of it and its waited-for children, from wait4."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, text


def count_lines(path: Path) -> int:
    """Documents in a JSONL file or in all JSONL files under a folder."""
    files = [path] if path.is_file() else sorted(path.rglob("*.jsonl"))
    return sum(sum(1 for _ in f.open("rb")) for f in files)


def measure(job: str, tool: str, cmd: list[str], work: Path, kept: Path) -> Measurement:
    log(f"running {job} / {tool}")
    cpu_s, rss_mb, rc, output = run_measured(cmd, work)
    if rc != 0:
        log(f"{tool} failed (exit {rc}):\n{output[-3000:]}")
        return Measurement(job, tool, cpu_s, rss_mb, None, status=f"failed (exit {rc})")
    return Measurement(job, tool, cpu_s, rss_mb, count_lines(kept) if kept.exists() else None)


def predictions_from_datatrove(work: Path, out: Path) -> None:
    """Scorer predictions from datatrove's kept and removed documents (cluster id -1: no duplicate)."""
    with out.open("w", encoding="utf-8") as fh:
        for folder, removed in (("kept", False), ("removed", True)):
            for file in sorted((work / folder).rglob("*.jsonl")):
                for line in file.open(encoding="utf-8"):
                    record = json.loads(line)
                    cluster = record.get("metadata", {}).get("minhash_cluster_id", -1)
                    fh.write(json.dumps({"id": record["id"], "pred_cluster": None if cluster == -1 else cluster,
                                         "removed": removed}) + "\n")


def predictions_from_truecost(duplicates: Path, out: Path) -> None:
    """Scorer predictions from duplicates.jsonl ({"id", "cluster", "removed"})."""
    with out.open("w", encoding="utf-8") as fh:
        for line in duplicates.open(encoding="utf-8"):
            record = json.loads(line)
            fh.write(json.dumps({"id": record["id"], "pred_cluster": record["cluster"],
                                 "removed": record["removed"]}) + "\n")


def score_on_sample(predictions: Path) -> dict[str, float] | None:
    """The shared sample's own scorer on the sample's documents (the rest of the corpus is ignored by it)."""
    scorer = SHARED_SAMPLE.parent / "eval_dedup.py"
    if not scorer.exists():
        return None
    done = subprocess.run([sys.executable, str(scorer), str(SHARED_SAMPLE.parent), str(predictions)],
                          capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else None


@dataclass
class Row:
    """One job/tool over `repeats` runs: median and range of CPU-seconds, median peak RSS, documents kept."""

    job: str
    tool: str
    cpu_s: list[float]
    rss_mb: list[float]
    docs_kept: int | None
    status: str

    def summary(self, mb: float, peer: Row | None) -> dict[str, object]:
        ok = self.status == "ok"
        speeds = sorted(mb / c for c in self.cpu_s) if ok else []
        med = statistics.median(speeds) if speeds else float("nan")
        peer_med = statistics.median(mb / c for c in peer.cpu_s) if peer and peer.status == "ok" else float("nan")
        return {"job": self.job, "tool": self.tool, "runs": len(self.cpu_s),
                "cpu_s_median": round(statistics.median(self.cpu_s), 3) if ok else None,
                "mb_per_cpu_s_median": round(med, 3) if ok else None,
                "mb_per_cpu_s_range": [round(speeds[0], 3), round(speeds[-1], 3)] if ok else None,
                "x_peer": round(med / peer_med, 2) if ok and peer_med == peer_med else None,
                "peak_rss_mb_median": round(statistics.median(self.rss_mb)) if ok else None,
                "docs_kept": self.docs_kept, "status": self.status}


def repeat(job: str, tool: str, make_cmd: object, work: Path, kept_rel: str, repeats: int) -> Row:
    """Run one job `repeats` times, each in a fresh folder."""
    cpu, rss, kept, status = [], [], None, "ok"
    for i in range(repeats):
        d = work / f"{job.replace(' ', '_')}-{tool.replace(' ', '_')}-{i}"
        d.mkdir()
        m = measure(job, tool, make_cmd(d), d, d / kept_rel)  # type: ignore[operator]
        if m.status != "ok":
            return Row(job, tool, cpu or [m.cpu_s], rss or [m.peak_rss_mb], None, m.status)
        cpu.append(m.cpu_s)
        rss.append(m.peak_rss_mb)
        kept = m.docs_kept
    return Row(job, tool, cpu, rss, kept, status)


def compile_truecost() -> None:
    """Byte-compile the truecost package the children import, once, as `pip install` did for datatrove's venv.

    Where PYTHONDONTWRITEBYTECODE is set (as on the shared dev machine) and truecost runs from a source tree,
    every run would otherwise compile its ~100 modules again (~0.2 CPU-s of a 10 MB run) while datatrove's are
    read compiled. Python reads a compiled module only while its source is unchanged, so this cannot go stale.
    """
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("truecost")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        compileall.compile_dir(folder, quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs-mb", type=float, default=4.0, help="MB of pydoc text to add to the corpus")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each job (medians and ranges reported)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed on stderr)")
    parser.add_argument("--only", choices=["quality", "dedup"], help="run one comparison only")
    args = parser.parse_args()

    peer = peer_python()
    compile_truecost()
    work = Path(tempfile.mkdtemp(prefix="curate-bench-"))
    rows: list[tuple[Row, Row | None]] = []
    scores: dict[str, dict[str, float] | None] = {}
    try:
        src = work / "input"
        src.mkdir()
        docs, text_bytes = build_corpus(src / "corpus.jsonl", args.docs_mb)
        mb = text_bytes / 1e6
        log(f"corpus: {docs} documents, {mb:.2f} MB of text in {src}")
        corpus = str(src / "corpus.jsonl")

        def cli(steps: str) -> object:
            return lambda d: [str(TRUECOST_PYTHON), "-m", "truecost", "curate", corpus, "--output", str(d / "out"),
                              "--steps", steps, "--json", "-q"]

        def peer_job(code: str) -> object:
            return lambda d: [str(peer), "-c", code, str(src), str(d)]

        if args.only in (None, "dedup"):
            dt = repeat("exact+near dedup", "datatrove MinHash defaults", peer_job(DATATROVE_MINHASH), work, "kept",
                        args.repeats)
            tc = repeat("exact+near dedup", "truecost curate CLI", cli("exact,near"), work, "out/kept", args.repeats)
            rows += [(dt, None), (tc, dt)]
            last_dt = sorted(work.glob("exact+near_dedup-datatrove*"))[-1]
            last_tc = sorted(work.glob("exact+near_dedup-truecost*"))[-1]
            try:
                predictions_from_datatrove(last_dt, work / "datatrove-predictions.jsonl")
                predictions_from_truecost(last_tc / "out" / "duplicates.jsonl", work / "truecost-predictions.jsonl")
                scores = {tool: score_on_sample(work / f"{tool}-predictions.jsonl")
                          for tool in ("datatrove", "truecost")}
            except (OSError, KeyError, ValueError) as exc:
                log(f"dedup outputs could not be scored: {exc}")
        if args.only in (None, "quality"):
            dt_default = repeat("quality", "datatrove defaults", peer_job(DATATROVE_QUALITY), work, "kept",
                                args.repeats)
            dt_advised = repeat("quality", "datatrove advised", peer_job(DATATROVE_QUALITY_ADVISED), work, "kept",
                                args.repeats)
            tc = repeat("quality", "truecost curate CLI", cli("quality"), work, "out/kept", args.repeats)
            rows += [(dt_default, None), (dt_advised, None), (tc, dt_advised), (tc, dt_default)]
    finally:
        if args.keep:
            log(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    summaries = [r.summary(mb, p) | ({"vs": p.tool} if p else {}) for r, p in rows]
    if args.json:
        print(json.dumps({"corpus_docs": docs, "corpus_mb": round(mb, 3), "repeats": args.repeats,
                          "rows": summaries, "near_dedup_scores_on_sample": scores}, indent=1))
        return 0
    print_tables(summaries, scores, docs, mb, args.repeats)
    return 0


def print_tables(summaries: list[dict[str, object]], scores: dict[str, dict[str, float] | None], docs: int,
                 mb: float, repeats: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    table = Table(title=f"curate vs datatrove 0.10.1: {docs} docs / {mb:.2f} MB of real text, 1 process each, "
                        f"median of {repeats} runs [range]")
    for col in ("job", "tool", "MB per CPU-s", "range", "x peer", "vs", "peak RSS MB", "docs kept", "status"):
        table.add_column(col, justify="left" if col in ("job", "tool", "vs", "status") else "right")
    for r in summaries:
        ok = r["status"] == "ok"
        rng = r["mb_per_cpu_s_range"]
        table.add_row(str(r["job"]), str(r["tool"]), f"{r['mb_per_cpu_s_median']:.2f}" if ok else "-",
                      f"{rng[0]:.2f}-{rng[1]:.2f}" if ok and isinstance(rng, list) else "-",
                      f"{r['x_peer']:.1f}x" if ok and r["x_peer"] else "-", str(r.get("vs", "")),
                      str(r["peak_rss_mb_median"]) if ok else "-", str(r["docs_kept"]), str(r["status"]))
    console.print(table)
    if any(scores.values()):
        quality = Table(title="near dedup on the labelled sample inside this corpus (its own eval_dedup.py)")
        keys = ("pair_precision", "pair_recall", "pair_f1", "removal_precision", "removal_recall")
        for col in ("tool", *keys):
            quality.add_column(col, justify="left" if col == "tool" else "right")
        for tool, score in scores.items():
            if score:
                quality.add_row(tool, *(f"{score[k]:.4f}" for k in keys))
        console.print(quality)
    print(textwrap.dedent("""\
        Headline ratios: quality uses "datatrove advised" (same rule sets, cheap page tests first); exact+near uses
        datatrove's MinHash defaults, which are also what its docs advise (FineWeb's 5-grams, 14x8 hashes); it has
        no exact step in that pipeline. CPU-seconds are whole processes (start-up and imports included)."""))


if __name__ == "__main__":
    raise SystemExit(main())
