"""curate at corpus scale: peak memory and speed of `truecost curate --steps exact,near` on a generated corpus.

Generates `--gb` of web-like JSONL pages (Zipf vocabulary, one in five an exact or near copy) in shards of
`--shard-mb`, runs the CLI on the local engine in one process, and prints MB per CPU-second and peak RSS (from
wait4). The target is a 10 GB corpus in at most 2 GB of peak RSS; `--gb` runs a smaller one on a busy machine.

Run: `.venv/bin/python bench/curate_scale.py [--gb 10] [--json]`
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the page generator lives with the tests that check flat memory on less data

from tests.curate.textgen import corpus_lines  # noqa: E402


def generate(folder: Path, gb: float, shard_mb: float) -> tuple[int, int]:
    """Shards of JSONL until `gb` is written; returns (files, bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = files = 0
    rng = random.Random(0)
    while written < gb * 1e9:
        path = folder / f"part-{files:05d}.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            size = 0
            while size < shard_mb * 1e6:
                chunk = "\n".join(corpus_lines(200, seed=rng.randrange(1 << 30), prefix=f"f{files}-")) + "\n"
                fh.write(chunk)
                size += len(chunk.encode("utf-8"))
        written += size
        files += 1
    return files, written


def measure(cmd: list[str]) -> tuple[int, float, float, str]:
    """Exit code, CPU-seconds, peak RSS (MB) and output of one process."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        out.seek(0)
        return (os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                out.read().decode("utf-8", "replace"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=10.0, help="corpus size in GB (target: 10)")
    parser.add_argument("--shard-mb", type=float, default=128.0, help="size of each input shard")
    parser.add_argument("--work", type=Path, help="folder for the corpus and output (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="curate-scale-"))
    try:
        files, size = generate(work / "in", args.gb, args.shard_mb)
        print(f"corpus: {files} shards, {size / 1e9:.2f} GB in {work / 'in'}", file=sys.stderr, flush=True)
        cmd = [sys.executable, "-m", "truecost", "curate", str(work / "in" / "*.jsonl"), "-o", str(work / "out"),
               "--steps", "exact,near", "--json", "-q"]
        rc, cpu, rss, text = measure(cmd)
        if rc != 0:
            print(text[-3000:], file=sys.stderr)
            return rc
        report = json.loads(text[text.index("{"):])
        result = {"gb": round(size / 1e9, 3), "shards": files, "cpu_s": round(cpu, 1),
                  "mb_per_cpu_s": round(size / 1e6 / cpu, 2), "peak_rss_mb": round(rss), "target_rss_mb": 2048,
                  "docs_in": report["totals"]["docs_in"], "docs_out": report["totals"]["docs_out"]}
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print("  ".join(f"{k}={v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
