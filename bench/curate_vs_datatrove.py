"""curate vs datatrove: MB of text per CPU-second and peak memory, same corpus, same run.

(a) Gopher quality + Gopher repetition + C4 filtering: datatrove's filters vs `truecost curate --steps quality`.
(b) MinHash near-dedup: datatrove's 4-stage MinHash (defaults: word 5-grams, 14 buckets x 8 hashes) vs
    `truecost.curate.dedup.find_near_duplicates` (read JSONL, dedup, write the kept documents).

Each job runs in its own child process; its CPU time (user + system, including any processes it waited for) and
peak RSS come from `os.wait4`, so the load other programs put on the machine does not change the figures. The
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
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import asdict, dataclass
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

TRUECOST_NEAR = """
import json, sys
from truecost.curate.dedup import find_near_duplicates
from truecost.curate.document import Document
src, work = sys.argv[1], sys.argv[2]
docs = [Document(id=r["id"], text=r["text"]) for r in map(json.loads, open(f"{src}/corpus.jsonl", encoding="utf-8"))]
result = find_near_duplicates(docs)
with open(f"{work}/kept.jsonl", "w", encoding="utf-8") as out:
    for doc in docs:
        if doc.id not in result.removed:
            out.write(json.dumps({"id": doc.id, "text": doc.text}) + "\\n")
with open(f"{work}/duplicates.jsonl", "w", encoding="utf-8") as out:
    for record in result.duplicate_records():
        out.write(json.dumps(record) + "\\n")
"""


# What each tool's process pays before any document: interpreter start-up and the imports its job needs.
STARTUP = {
    "datatrove": "import datatrove.pipeline.dedup, datatrove.pipeline.filters, datatrove.executor, spacy;"
                 " spacy.blank('en')",
    "truecost": "import json, truecost.curate.dedup, truecost.curate.document",
}


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


def truecost_quality_available() -> bool:
    """True once `truecost curate` has its --steps option (the pipeline lands separately from dedup)."""
    probe = subprocess.run([str(TRUECOST_PYTHON), "-m", "truecost", "curate", "--help"], capture_output=True,
                           text=True)
    return probe.returncode == 0 and "--steps" in probe.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs-mb", type=float, default=4.0, help="MB of pydoc text to add to the corpus")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed on stderr)")
    parser.add_argument("--only", choices=["quality", "near"], help="run one comparison only")
    args = parser.parse_args()

    peer = peer_python()
    work = Path(tempfile.mkdtemp(prefix="curate-bench-"))
    try:
        src = work / "input"
        src.mkdir()
        docs, text_bytes = build_corpus(src / "corpus.jsonl", args.docs_mb)
        mb = text_bytes / 1e6
        log(f"corpus: {docs} documents, {mb:.2f} MB of text in {src}")
        results: list[Measurement] = []
        scores: dict[str, dict[str, float] | None] = {}

        def job_dir(name: str) -> Path:
            path = work / name
            path.mkdir()
            return path

        cli = truecost_quality_available()

        def curate_cli(step: str, d: Path) -> list[str]:
            return [str(TRUECOST_PYTHON), "-m", "truecost", "curate", str(src / "corpus.jsonl"), "--output",
                    str(d / "out"), "--steps", step, "--json"]

        if args.only in (None, "near"):
            d = job_dir("dt_near")
            results.append(measure("near dedup", "datatrove", [str(peer), "-c", DATATROVE_MINHASH, str(src),
                                                               str(d)], d, d / "kept"))
            d = job_dir("tc_near")
            results.append(measure("near dedup", "truecost", [str(TRUECOST_PYTHON), "-c", TRUECOST_NEAR, str(src),
                                                              str(d)], d, d / "kept.jsonl"))
            try:
                predictions_from_datatrove(work / "dt_near", work / "datatrove-predictions.jsonl")
                predictions_from_truecost(work / "tc_near" / "duplicates.jsonl", work / "truecost-predictions.jsonl")
                scores = {tool: score_on_sample(work / f"{tool}-predictions.jsonl") for tool in ("datatrove",
                                                                                                  "truecost")}
            except (OSError, KeyError, ValueError) as exc:
                log(f"near dedup outputs could not be scored: {exc}")
            if cli:
                d = job_dir("tc_near_cli")
                results.append(measure("near dedup", "truecost curate CLI", curate_cli("near", d), d,
                                       d / "out" / "kept"))
        if args.only in (None, "quality"):
            d = job_dir("dt_quality")
            results.append(measure("quality", "datatrove", [str(peer), "-c", DATATROVE_QUALITY, str(src), str(d)],
                                   d, d / "kept"))
            if cli:
                d = job_dir("tc_quality")
                results.append(measure("quality", "truecost curate CLI", curate_cli("quality", d), d,
                                       d / "out" / "kept"))
            else:
                results.append(Measurement("quality", "truecost curate CLI", float("nan"), float("nan"), None,
                                           status="pending: `truecost curate --steps` has not landed"))
        startup_cpu_s = {
            "datatrove": run_measured([str(peer), "-c", STARTUP["datatrove"]], work)[0],
            "truecost": run_measured([str(TRUECOST_PYTHON), "-c", STARTUP["truecost"]], work)[0],
            # The CLI's own start-up: interpreter, Typer app and the command table (steps import lazily).
            "truecost CLI": run_measured([str(TRUECOST_PYTHON), "-m", "truecost", "curate", "--help"], work)[0],
        }
    finally:
        if args.keep:
            log(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    rows = []
    for job in ("quality", "near dedup"):
        peer_m = next((m for m in results if m.job == job and m.tool == "datatrove"), None)
        if peer_m is None:
            continue
        for m in [peer_m] + [m for m in results if m.job == job and m.tool != "datatrove"]:
            speed = mb / m.cpu_s if m.status == "ok" and m.cpu_s > 0 else float("nan")
            peer_speed = mb / peer_m.cpu_s if peer_m.status == "ok" and peer_m.cpu_s > 0 else float("nan")
            startup = startup_cpu_s["truecost CLI" if "CLI" in m.tool else m.tool]
            net = mb / (m.cpu_s - startup) if m.status == "ok" and m.cpu_s > startup else float("nan")
            peer_net = (mb / (peer_m.cpu_s - startup_cpu_s["datatrove"])
                        if peer_m.status == "ok" and peer_m.cpu_s > startup_cpu_s["datatrove"] else float("nan"))
            rows.append({**asdict(m), "mb": round(mb, 3), "mb_per_cpu_s": round(speed, 3),
                         "speed_vs_datatrove": round(speed / peer_speed, 2) if peer_speed == peer_speed else None,
                         "startup_cpu_s": round(startup, 3),
                         "net_speed_vs_datatrove": round(net / peer_net, 2) if net == net and peer_net == peer_net
                         else None})
    if args.json:
        print(json.dumps({"corpus_docs": docs, "corpus_mb": round(mb, 3), "rows": rows,
                          "near_dedup_scores_on_sample": scores}, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"curate vs datatrove 0.10.1 on {docs} docs / {mb:.2f} MB of real text (1 process each)")
    for col in ("job", "tool", "CPU s", "MB per CPU-s", "x datatrove", "start-up CPU s", "x net of start-up",
                "peak RSS MB", "docs kept", "status"):
        table.add_column(col, justify="left" if col in ("job", "tool", "status") else "right")
    for r in rows:
        ok = r["status"] == "ok"
        table.add_row(r["job"], r["tool"], f"{r['cpu_s']:.2f}" if ok else "-",
                      f"{r['mb_per_cpu_s']:.2f}" if ok else "-",
                      f"{r['speed_vs_datatrove']:.1f}x" if ok and r["speed_vs_datatrove"] else "-",
                      f"{r['startup_cpu_s']:.2f}",
                      f"{r['net_speed_vs_datatrove']:.1f}x" if ok and r["net_speed_vs_datatrove"] else "-",
                      f"{r['peak_rss_mb']:.0f}" if ok else "-", str(r["docs_kept"]) if r["docs_kept"] is not None
                      else "-", r["status"])
    console = Console(width=140)
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
        Targets (issue 4): quality >= 10x datatrove, near dedup >= 5x datatrove, in MB per CPU-second.
        CPU-seconds include interpreter start-up and imports; "net of start-up" subtracts each tool's start-up CPU."""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
