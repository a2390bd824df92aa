"""truecost monitor vs Evidently 0.7.23 on the same drifting streams, in one run, like for like.

Streams come from the shared MMLU sample (real prompts, real per-item correctness of Mixtral-8x7B): a reference
of 250 rows from nutrition + philosophy (accuracy ~0.79), then 150 more rows of the same, then 150 rows that are
the same (no drift), 20% professional accounting (mild, ~5 accuracy points), or all accounting or all virology
(severe, ~25-28 points). Windows of 50 rows, so drift starts at window 3.

Evidently runs in two configurations, and the table says which one each ratio uses:
- defaults: `Report([DataDriftPreset()])`, as its quick start shows;
- advised: `Report([ValueDrift("quality"), ValueDrift("prompt")])`, only the two tests the comparison reads (the
  preset computes the same per-column tests and adds a drifted-share summary). Its verdicts are checked equal to
  the defaults' on the timing streams, so the rates below hold for both.

Scoring, per stream: a *false alarm* is any alarm before the drift window (on no-drift streams: anywhere); a
*detection* is a quality alarm in a drifted window, and its delay counts windows from the drift window. An early
alarm is counted as early, never as a miss. Rates carry 95% Wilson intervals; the two tools' rates are compared
with Fisher's exact test on the same streams. CPU-seconds per window are the median (and range) of `--repeats`
timed passes over `--timing-streams` streams per scenario, one BLAS thread for both tools.

Evidently lives in `bench/.venv-evidently` (created on first use); its verdicts are cached there by stream content.
Run: `.venv/bin/python bench/monitor_vs_evidently.py [--streams 20] [--timing-streams 2] [--repeats 3] [--json]`
"""

from __future__ import annotations

import os

# One BLAS thread for both tools: CPU-seconds then count work, not threads spinning on a busy machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
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
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset

CONFIGS = {"defaults": lambda: [DataDriftPreset()],
           "advised": lambda: [ValueDrift(column="quality"), ValueDrift(column="prompt")]}

def dataset(frame):
    frame = frame[["prompt", "quality"]].reset_index(drop=True)
    return Dataset.from_pandas(frame, data_definition=DataDefinition(text_columns=["prompt"],
                                                                     numerical_columns=["quality"]))

def drifted(name, value):
    # Text content drift reports a share over its threshold; the value tests report p-values.
    return bool(value > 0.95) if "threshold=0.95" in name else bool(value < 0.05)

config, window, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
out = []
for path in paths:
    stream = pd.read_parquet(path)
    ref = dataset(stream[stream["part"] == "reference"])
    cur = stream[stream["part"] == "current"].reset_index(drop=True)
    windows = []
    for start in range(0, len(cur), window):
        cpu0 = time.process_time()
        snapshot = Report(CONFIGS[config]()).run(dataset(cur.iloc[start:start + window]), ref)
        metrics = {m["metric_name"]: m["value"] for m in snapshot.dict()["metrics"]}
        cpu = time.process_time() - cpu0
        quality = next(drifted(k, v) for k, v in metrics.items() if "column=quality" in k)
        prompt = next(drifted(k, v) for k, v in metrics.items() if "column=prompt" in k)
        windows.append({"quality_drift": quality, "prompt_drift": prompt, "cpu_seconds": cpu})
    out.append({"path": path, "windows": windows})
print(json.dumps(out))
'''


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peer_python() -> Path:
    """The Evidently venv's interpreter, creating the venv on first use."""
    return _peer.peer_python(PEER_VENV, PEER_PACKAGES, "import evidently; assert evidently.__version__ == '0.7.23'")


def build_streams(count: int) -> dict[str, list[Any]]:
    """`count` streams per scenario, seeds 0..count-1: the same streams for both tools."""
    from truecost.monitor.streams import drift_stream, read_mmlu_pool

    pools = {"base": read_mmlu_pool([str(SAMPLE / "nutrition.csv"), str(SAMPLE / "philosophy.csv")]),
             "accounting": read_mmlu_pool([str(SAMPLE / "professional_accounting.csv")]),
             "virology": read_mmlu_pool([str(SAMPLE / "virology.csv")])}
    return {name: [drift_stream(pools["base"], pools[drifted] if drifted else None, n_reference=N_REF,
                                n_before=N_BEFORE, n_after=N_AFTER, share=share, seed=seed) for seed in range(count)]
            for name, (drifted, share) in SCENARIOS.items()}


# -- the two tools, each giving per-window verdicts ---------------------------------------------------------------
def truecost_windows(stream: Any, seed: int) -> tuple[list[dict[str, Any]], float]:
    """(per-window verdicts, CPU-seconds per window) of one truecost monitor run; the last window also carries
    the retrain decision (Evidently makes none)."""
    from truecost.monitor import run_monitor

    cpu0 = time.process_time()
    result = run_monitor(stream.reference, stream.current, window=WINDOW, seed=seed)
    cpu = time.process_time() - cpu0
    windows: list[dict[str, Any]] = [{"quality": w.signals["quality_drift"].alarm, "any": w.alarm}
                                     for w in result.windows]
    windows[-1]["action"] = result.decision.action
    return windows, cpu / len(result.windows)


def _stream_files(streams: dict[str, list[Any]], folder: Path) -> dict[str, list[Path]]:
    import pandas as pd

    files: dict[str, list[Path]] = {}
    for name, items in streams.items():
        for s in items:
            frame = pd.concat([s.reference.assign(part="reference"), s.current.assign(part="current")])
            frame = frame[["prompt", "quality", "part"]].reset_index(drop=True)
            key = hashlib.sha256(pd.util.hash_pandas_object(frame).to_numpy().tobytes()).hexdigest()[:20]
            path = folder / f"{key}.parquet"
            frame.to_parquet(path)
            files.setdefault(name, []).append(path)
    return files


def evidently_windows(config: str, paths: list[Path], *, cached: bool = True) -> list[list[dict[str, Any]]]:
    """Per-window verdicts (and CPU-seconds) of Evidently in `config` for each stream file, in order."""
    cache_path = PEER_VENV / f"monitor_bench_{config}.json"
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cached and cache_path.exists() else {}
    todo = [p for p in paths if p.name not in cache]
    if todo:
        worker = paths[0].parent / "peer_worker.py"
        worker.write_text(PEER_WORKER)
        log(f"Evidently ({config}): {len(todo)} streams ...")
        done = subprocess.run([str(peer_python()), str(worker), config, str(WINDOW), *map(str, todo)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"the Evidently worker failed:\n{done.stderr[-3000:]}")
        for item in json.loads(done.stdout):
            cache[Path(item["path"]).name] = item["windows"]
        if cached:
            cache_path.write_text(json.dumps(cache))
    return [[{"quality": w["quality_drift"], "any": w["quality_drift"] or w["prompt_drift"],
              "cpu_seconds": w["cpu_seconds"]} for w in cache[p.name]] for p in paths]


# -- scoring -----------------------------------------------------------------------------------------------------
def score_stream(windows: list[dict[str, Any]], drifting: bool) -> dict[str, Any]:
    """False alarm: any alarm before the drift window (anywhere without drift). Detection: a quality alarm at or
    after the drift window, with its delay in windows. An early alarm stays early; it is never a miss."""
    before = windows[:DRIFT_WINDOW] if drifting else windows
    first = next((i for i, w in enumerate(windows[DRIFT_WINDOW:]) if w["quality"]), None) if drifting else None
    return {"false_alarm": any(w["any"] for w in before), "detected": first is not None, "delay": first,
            "retrain": windows[-1].get("action") == "retrain"}


def wilson(k: int, n: int) -> tuple[float, float]:
    from scipy import stats

    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def rate(flags: list[bool]) -> dict[str, Any]:
    k, n = sum(flags), len(flags)
    low, high = wilson(k, n)
    return {"k": k, "n": n, "rate": k / n, "ci95": [low, high]}


def fisher_p(a: dict[str, Any], b: dict[str, Any]) -> float:
    from scipy import stats

    table = [[a["k"], a["n"] - a["k"]], [b["k"], b["n"] - b["k"]]]
    return float(stats.fisher_exact(table)[1])


def summarise(scored: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rows in scored.items():
        delays = [r["delay"] for r in rows if r["delay"] is not None]
        out[name] = {"false_alarm": rate([r["false_alarm"] for r in rows]),
                     "retrain": sum(r["retrain"] for r in rows)}
        if name != "no drift":
            out[name]["detected"] = rate([r["detected"] for r in rows])
            out[name]["median_delay_windows"] = statistics.median(delays) if delays else None
            out[name]["max_delay_windows"] = max(delays) if delays else None
    return out


# -- timing ------------------------------------------------------------------------------------------------------
def timed(repeats: int, run_once: Any) -> dict[str, float]:
    """Median and range of CPU-seconds per window over `repeats` passes of `run_once()`."""
    values = [run_once() for _ in range(repeats)]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "repeats": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=20, help="streams per scenario, for both tools")
    parser.add_argument("--timing-streams", type=int, default=2, help="streams per scenario in each timed pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per tool and configuration")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = parser.parse_args()
    if not SAMPLE.is_dir():
        sys.exit(f"shared sample not found at {SAMPLE}")
    sys.path.insert(0, str(ROOT / "src"))
    streams = build_streams(args.streams)
    with tempfile.TemporaryDirectory() as tmp:
        files = _stream_files(streams, Path(tmp))
        log("truecost ...")
        ours = {name: [score_stream(truecost_windows(s, seed)[0], name != "no drift") for seed, s in enumerate(items)]
                for name, items in streams.items()}
        everything = evidently_windows("advised", [p for paths in files.values() for p in paths])
        theirs, start = {}, 0
        for name, paths in files.items():  # one worker for every stream, then split back by scenario
            theirs[name] = [score_stream(w, name != "no drift") for w in everything[start:start + len(paths)]]
            start += len(paths)
        timing_paths = [p for paths in files.values() for p in paths[:args.timing_streams]]
        timing_streams = [(s, seed) for items in streams.values() for seed, s in enumerate(items[:args.timing_streams])]
        passes: dict[str, list[Any]] = {"defaults": [], "advised": []}

        def ev_pass(config: str) -> float:
            runs = evidently_windows(config, timing_paths, cached=False)
            passes[config].append(runs)
            cpu = [w["cpu_seconds"] for windows in runs for w in windows]
            return sum(cpu) / len(cpu)

        def tc_pass() -> float:
            per_window = [truecost_windows(s, seed)[1] for s, seed in timing_streams]
            return sum(per_window) / len(per_window)

        log(f"timing: {args.repeats} passes x {len(timing_paths)} streams per tool ...")
        cpu = {"truecost": timed(args.repeats, tc_pass),
               "evidently_advised": timed(args.repeats, lambda: ev_pass("advised")),
               "evidently_defaults": timed(args.repeats, lambda: ev_pass("defaults"))}

        def verdicts(runs: list[list[dict[str, Any]]]) -> list[list[tuple[bool, bool]]]:
            return [[(w["quality"], w["any"]) for w in windows] for windows in runs]

        verdicts_equal = verdicts(passes["defaults"][0]) == verdicts(passes["advised"][0])
    report = build_report(summarise(ours), summarise(theirs), cpu, verdicts_equal, args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


def build_report(ours: dict[str, Any], theirs: dict[str, Any], cpu: dict[str, Any], verdicts_equal: bool,
                 args: argparse.Namespace) -> dict[str, Any]:
    p_values = {name: {"false_alarm": fisher_p(ours[name]["false_alarm"], theirs[name]["false_alarm"])}
                for name in SCENARIOS}
    for name in list(SCENARIOS)[1:]:
        p_values[name]["detected"] = fisher_p(ours[name]["detected"], theirs[name]["detected"])
    tc = cpu["truecost"]["median"]
    return {"date": datetime.now(UTC).date().isoformat(), "load_average": os.getloadavg(),
            "streams_per_scenario": args.streams, "truecost": ours, "evidently": theirs, "fisher_p": p_values,
            "evidently_defaults_equal_advised_verdicts": verdicts_equal, "cpu_seconds_per_window": cpu,
            "speedup_vs_advised": cpu["evidently_advised"]["median"] / tc,
            "speedup_vs_defaults": cpu["evidently_defaults"]["median"] / tc}


def _rate_cell(r: dict[str, Any]) -> str:
    return f"{r['k']}/{r['n']} = {r['rate']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]"


def print_table(report: dict[str, Any]) -> None:
    ours, theirs, p = report["truecost"], report["evidently"], report["fisher_p"]
    cols = ["measure", "truecost", "Evidently 0.7.23", "Fisher p"]
    rows = []
    for name in SCENARIOS:
        where = "anywhere" if name == "no drift" else "before drift"
        rows.append([f"{name}: false alarm ({where})", _rate_cell(ours[name]["false_alarm"]),
                     _rate_cell(theirs[name]["false_alarm"]), f"{p[name]['false_alarm']:.3f}"])
        rows.append([f"{name}: retrain decisions", f"{ours[name]['retrain']}/{ours[name]['false_alarm']['n']}",
                     "no decision", ""])
        if name != "no drift":
            o, t = ours[name], theirs[name]
            rows.append([f"{name}: quality alarm after drift", _rate_cell(o["detected"]), _rate_cell(t["detected"]),
                         f"{p[name]['detected']:.3f}"])
            rows.append([f"{name}: median (max) delay, windows",
                         f"{o['median_delay_windows']} ({o['max_delay_windows']})",
                         f"{t['median_delay_windows']} ({t['max_delay_windows']})", ""])
    cpu = report["cpu_seconds_per_window"]

    def cell(c: dict[str, float]) -> str:
        return f"{c['median']:.3f} ({c['min']:.3f}-{c['max']:.3f})"

    rows.append(["CPU-s per window, median (range)", cell(cpu["truecost"]),
                 f"advised {cell(cpu['evidently_advised'])}; defaults {cell(cpu['evidently_defaults'])}", ""])
    rows.append(["speed-up per window", "", f"{report['speedup_vs_advised']:.0f}x vs advised (headline); "
                 f"{report['speedup_vs_defaults']:.0f}x vs defaults", ""])
    widths = [max(len(str(r[i])) for r in [cols, *rows]) for i in range(len(cols))]
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    print(f"\n{report['streams_per_scenario']} streams per scenario for both tools; windows of {WINDOW}, drift at "
          f"window {DRIFT_WINDOW}; rates with 95% Wilson intervals; delay 0 = flagged in the first drifted window. "
          f"Evidently's rates use the advised configuration; defaults gave "
          f"{'the same' if report['evidently_defaults_equal_advised_verdicts'] else 'DIFFERENT'} verdicts on the "
          f"timing streams. {report['date']}, load average {report['load_average'][0]:.1f}.")


if __name__ == "__main__":
    main()
