"""truecost monitor vs Evidently (0.7.23, DataDriftPreset defaults) on the same drifting streams, in one run.

Streams come from the shared MMLU sample (real prompts, real per-item correctness of Mixtral-8x7B): a reference
of 250 rows from nutrition + philosophy (accuracy ~0.79), then 150 more rows of the same, then 150 rows that are
the same (no drift), 20% professional accounting (mild, ~5 accuracy points), or all accounting or all virology
(severe, ~25-28 points). Windows of 50 rows, so drift starts at window 3.

Per tool: false-alarm rate (share of no-drift streams with any alarm), detection delay (windows from the drift
window to the first alarm; quality alarms for truecost, the quality column's drift test for Evidently), the
retrain decision (truecost only: Evidently does not make one), and CPU-seconds per window (reference handling
included: truecost's fit is spread over its windows; Evidently re-reads the reference in every report).

Evidently lives in `bench/.venv-evidently` (created on first run). Run:
`.venv/bin/python bench/monitor_vs_evidently.py [--streams 40] [--peer-streams 6] [--json]`
"""

from __future__ import annotations

import os

# One BLAS thread for both tools: CPU-seconds then count work, not threads spinning on a busy machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import _peer  # noqa: E402 - bench/ is on sys.path when a bench runs as a script

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "monitor_sample" / "mmlu_stream"
PEER_VENV = ROOT / "bench" / ".venv-evidently"
PEER_PACKAGES = ["evidently==0.7.23", "pandas<3"]
WINDOW, N_REF, N_BEFORE, N_AFTER = 50, 250, 150, 150
DRIFT_WINDOW = N_BEFORE // WINDOW
SCENARIOS = {"no drift": (None, 0.0), "mild (20% accounting)": ("accounting", 0.2),
             "severe (accounting)": ("accounting", 1.0), "severe (virology)": ("virology", 1.0)}

PEER_WORKER = r'''
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

def dataset(frame):
    frame = frame[["prompt", "quality"]].reset_index(drop=True)
    return Dataset.from_pandas(frame, data_definition=DataDefinition(text_columns=["prompt"],
                                                                     numerical_columns=["quality"]))

out = []
for path in sys.argv[2:]:
    stream = pd.read_parquet(path)
    ref = stream[stream["part"] == "reference"]
    cur = stream[stream["part"] == "current"].reset_index(drop=True)
    windows = []
    for start in range(0, len(cur), int(sys.argv[1])):
        cpu0 = time.process_time()
        snapshot = Report([DataDriftPreset()]).run(dataset(cur.iloc[start:start + int(sys.argv[1])]), dataset(ref))
        metrics = {m["metric_name"]: m["value"] for m in snapshot.dict()["metrics"]}
        cpu = time.process_time() - cpu0
        share = next(v["share"] for k, v in metrics.items() if k.startswith("DriftedColumnsCount"))
        quality_p = next(v for k, v in metrics.items() if "column=quality" in k)
        prompt = next((k, v) for k, v in metrics.items() if "column=prompt" in k)
        windows.append({"dataset_drift": bool(share >= 0.5), "quality_drift": bool(quality_p < 0.05),
                        "prompt_drift": bool(prompt[1] > 0.95 if "threshold=0.95" in prompt[0] else prompt[1] < 0.05),
                        "cpu_seconds": cpu})
    out.append({"path": path, "windows": windows})
print(json.dumps(out))
'''


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peer_python() -> Path:
    """The Evidently venv's interpreter, creating the venv on first use."""
    return _peer.peer_python(PEER_VENV, PEER_PACKAGES, "import evidently; assert evidently.__version__ == '0.7.23'")


def build_streams(count: int) -> dict[str, list[Any]]:
    from truecost.monitor.streams import drift_stream, read_mmlu_pool

    pools = {"base": read_mmlu_pool([str(SAMPLE / "nutrition.csv"), str(SAMPLE / "philosophy.csv")]),
             "accounting": read_mmlu_pool([str(SAMPLE / "professional_accounting.csv")]),
             "virology": read_mmlu_pool([str(SAMPLE / "virology.csv")])}
    streams: dict[str, list[Any]] = {}
    for name, (drifted, share) in SCENARIOS.items():
        n = count if name == "no drift" else max(count // 4, 3)
        streams[name] = [drift_stream(pools["base"], pools[drifted] if drifted else None, n_reference=N_REF,
                                      n_before=N_BEFORE, n_after=N_AFTER, share=share, seed=seed)
                         for seed in range(n)]
    return streams


def delay(first: int | None) -> int | None:
    return None if first is None else first - DRIFT_WINDOW


def run_truecost(streams: dict[str, list[Any]]) -> dict[str, list[dict[str, Any]]]:
    from truecost.monitor import run_monitor

    out: dict[str, list[dict[str, Any]]] = {}
    for name, items in streams.items():
        rows = []
        for seed, s in enumerate(items):
            cpu0 = time.process_time()
            result = run_monitor(s.reference, s.current, window=WINDOW, seed=seed)
            cpu = time.process_time() - cpu0
            rows.append({"any_alarm": bool(result.alarms), "first_any": result.first_alarm(),
                         "first_quality": result.first_alarm("quality_drift"),
                         "first_input": result.first_alarm("input_drift"), "action": result.decision.action,
                         "cpu_per_window": cpu / len(result.windows),
                         "retrain_cost_usd": result.decision.retrain_cost_usd,
                         "break_even": result.decision.break_even_quality_drop})
        out[name] = rows
    return out


def run_evidently(streams: dict[str, list[Any]], per_scenario: int, folder: Path) -> dict[str, list[dict[str, Any]]]:
    import pandas as pd

    paths: dict[str, list[str]] = {}
    for name, items in streams.items():
        for i, s in enumerate(items[:per_scenario]):
            path = folder / f"{name.split()[0]}-{name.split()[-1].strip('()%')}-{i}.parquet"
            frame = pd.concat([s.reference.assign(part="reference"), s.current.assign(part="current")])
            frame[["prompt", "quality", "part"]].to_parquet(path)
            paths.setdefault(name, []).append(str(path))
    worker = folder / "peer_worker.py"
    worker.write_text(PEER_WORKER)
    # Evidently's verdicts do not depend on truecost's code: cache them beside its venv (git-ignored).
    cache_path = PEER_VENV / "monitor_bench_cache.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    by_path = {p: cache[Path(p).name] for ps in paths.values() for p in ps if Path(p).name in cache}
    todo = [p for ps in paths.values() for p in ps if p not in by_path]
    log(f"Evidently: {len(todo)} streams x {N_AFTER // WINDOW + N_BEFORE // WINDOW} windows "
        f"({len(by_path)} cached) ...")
    if todo:
        done = subprocess.run([str(peer_python()), str(worker), str(WINDOW), *todo], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"the Evidently worker failed:\n{done.stderr[-3000:]}")
        for item in json.loads(done.stdout):
            by_path[item["path"]] = cache[Path(item["path"]).name] = item["windows"]
        cache_path.write_text(json.dumps(cache))
    out: dict[str, list[dict[str, Any]]] = {}
    for name, ps in paths.items():
        rows = []
        for p in ps:
            windows = by_path[p]
            first_any = next((i for i, w in enumerate(windows) if w["dataset_drift"] or w["quality_drift"]
                              or w["prompt_drift"]), None)
            first_quality = next((i for i, w in enumerate(windows) if w["quality_drift"]), None)
            first_dataset = next((i for i, w in enumerate(windows) if w["dataset_drift"]), None)
            rows.append({"any_alarm": first_any is not None, "first_any": first_any, "first_quality": first_quality,
                         "first_input": first_dataset, "action": "n/a",
                         "cpu_per_window": sum(w["cpu_seconds"] for w in windows) / len(windows)})
        out[name] = rows
    return out


def summarise(rows_by_scenario: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    import numpy as np

    no_drift = rows_by_scenario["no drift"]
    summary: dict[str, Any] = {"false_alarm_rate": float(np.mean([r["any_alarm"] for r in no_drift])),
                               "no_drift_streams": len(no_drift)}
    for name, rows in rows_by_scenario.items():
        if name == "no drift":
            continue
        delays = [delay(r["first_quality"]) for r in rows]
        early = [d for d in delays if d is not None and d < 0]
        hit = [d for d in delays if d is not None and d >= 0]
        summary[name] = {"streams": len(rows), "detected": len(hit) / len(rows),
                         "mean_quality_delay_windows": float(np.mean(hit)) if hit else None,
                         "max_quality_delay_windows": max(hit) if hit else None, "early": len(early),
                         "retrain": sum(r["action"] == "retrain" for r in rows)}
    cpu = [r["cpu_per_window"] for rows in rows_by_scenario.values() for r in rows]
    summary["cpu_seconds_per_window"] = float(np.mean(cpu))
    first = next(iter(rows_by_scenario.values()))[0]
    if "retrain_cost_usd" in first:
        summary["retrain_cost_usd"], summary["break_even_quality_drop"] = first["retrain_cost_usd"], first["break_even"]
    return summary


def _cell(d: dict[str, Any]) -> str:
    mean = "-" if d["mean_quality_delay_windows"] is None else f"{d['mean_quality_delay_windows']:.2f}"
    return f"{d['detected']:.0%} found, delay {mean} (max {d['max_quality_delay_windows']}), early {d['early']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=40, help="no-drift streams for truecost (drifting: 1/4)")
    parser.add_argument("--peer-streams", type=int, default=4, help="streams per scenario for Evidently (slow)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument("--peer-only", action="store_true", help="only run (and cache) Evidently")
    args = parser.parse_args()
    if not SAMPLE.is_dir():
        sys.exit(f"shared sample not found at {SAMPLE}")
    sys.path.insert(0, str(ROOT / "src"))
    streams = build_streams(args.streams)
    with tempfile.TemporaryDirectory() as tmp:
        if args.peer_only:
            run_evidently(streams, args.peer_streams, Path(tmp))
            return
        log("truecost ...")
        ours = summarise(run_truecost(streams))
        ours_peer_subset = summarise(run_truecost({k: v[:args.peer_streams] for k, v in streams.items()}))
        theirs = summarise(run_evidently(streams, args.peer_streams, Path(tmp)))
    ratio = theirs["cpu_seconds_per_window"] / ours["cpu_seconds_per_window"]
    report = {"truecost": ours, "truecost_on_peer_streams": ours_peer_subset, "evidently": theirs,
              "speedup_per_window": ratio}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    cols = ["measure", "truecost", f"truecost (same {args.peer_streams}/scenario)", "Evidently 0.7.23", "ratio"]
    rows = [["false-alarm rate, no-drift streams", f"{ours['false_alarm_rate']:.3f} (n={ours['no_drift_streams']})",
             f"{ours_peer_subset['false_alarm_rate']:.3f}",
             f"{theirs['false_alarm_rate']:.3f} (n={theirs['no_drift_streams']})", ""]]
    for name in list(SCENARIOS)[1:]:
        rows.append([f"{name}: quality alarm", _cell(ours[name]), _cell(ours_peer_subset[name]),
                     _cell(theirs[name]), ""])
        rows.append([f"{name}: retrain decisions", f"{ours[name]['retrain']}/{ours[name]['streams']}",
                     f"{ours_peer_subset[name]['retrain']}/{ours_peer_subset[name]['streams']}", "no decision", ""])
    rows.append(["CPU-seconds per window", f"{ours['cpu_seconds_per_window']:.3f}",
                 f"{ours_peer_subset['cpu_seconds_per_window']:.3f}", f"{theirs['cpu_seconds_per_window']:.2f}",
                 f"{ratio:.0f}x faster"])
    widths = [max(len(str(r[i])) for r in [cols, *rows]) for i in range(len(cols))]
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    if "retrain_cost_usd" in ours:
        print(f"\ntruecost defaults: one retrain ${ours['retrain_cost_usd']:,.0f} (truecost.estimate); "
              f"retraining pays beyond a quality drop of {ours['break_even_quality_drop']:.3f}")
    print(f"windows of {WINDOW}; drift at window {DRIFT_WINDOW}; delay counts windows after the drift window "
          "(0 = flagged in the first drifted window). Evidently's quality alarm is its per-column drift test "
          "on the quality column; its false alarms count any of its drift flags.")


if __name__ == "__main__":
    main()
