"""Error of predicted GPU-hours on published pre-training runs: truecost vs 6ND@40% vs llm-analysis 0.2.2.

Run: `.venv/bin/python bench/estimate_vs_peers.py [--runs PATH] [--tiers A,A-]`. llm-analysis is installed into
its own environment (`bench/.venv-llm-analysis`, git-ignored) by this script; when that fails, its column says so.
All three estimators see the same inputs: the model, its token count, the GPU type and (where published) the GPU
count. llm-analysis gets its own built-in model config where it ships one, runs at the 0.5 FLOPs efficiency its
docs quote for Megatron-LM, and is told about gated MLPs; gaps in what it can express are listed under the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv-llm-analysis"
PEER = "llm-analysis==0.2.2"
DEFAULT_RUNS = Path("/work/shared/data/published_runs/runs.csv")

# llm-analysis's own model configs for the runs it knows by name.
LLMA_MODELS = {"llama-7b": "decapoda-research_llama-7b-hf", "llama-33b": "decapoda-research_llama-30b-hf",
               "llama-2-7b": "NousResearch_Llama-2-7b-hf", "llama-2-70b": "upstage_Llama-2-70b-instruct-v2",
               "opt-175b": "facebook_opt-175b"}
LLMA_GPUS = {"A100 80GB": "a100-sxm-80gb", "A100 40GB": "a100-sxm-40gb", "H100 SXM": "h100-sxm-80gb",
             "H800": "h100-sxm-80gb", "V100 SXM2 32GB": "v100-sxm-32gb"}

RUNNER = r"""
import json, sys, logging
from llm_analysis.analysis import train
out = []
for job in json.load(open(sys.argv[1])):
    try:
        s = train(log_level="ERROR", **job)
        out.append({"gpu_hours": s["total_training_latency"] * job["total_num_gpus"] / 3600.0,
                    "params": s.get("num_params_total")})
    except BaseException as exc:
        out.append({"error": f"{type(exc).__name__}: {exc}"[:160]})
json.dump(out, sys.stdout)
"""


def ensure_peer() -> tuple[Path | None, str]:
    """The peer's python, installing it on first use; (None, reason) when it cannot be installed."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import llm_analysis"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, ""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PEER], check=True, capture_output=True,
                       timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        return None, f"could not install {PEER}: {exc}"
    return python, ""


def llm_analysis_job(run: Any, spec: Any, arch: Any, gpus: int, workdir: Path) -> tuple[dict[str, Any], str]:
    """The llm-analysis `train()` arguments for one run, and a note on what it could not express."""
    note = ""
    name = LLMA_MODELS.get(spec.model or "")
    if name is None:
        config = {"name": f"truecost_{arch.name}", "num_layers": arch.num_layers, "n_head": arch.num_heads,
                  "hidden_dim": arch.hidden_size, "vocab_size": arch.vocab_size, "max_seq_len": run.seq_len,
                  "num_key_value_heads": arch.num_kv_heads, "model_type": "llama"}
        if arch.intermediate_size % arch.hidden_size == 0:
            config["ffn_embed_dim"] = arch.intermediate_size
        else:
            note = f"ffn {arch.intermediate_size} not a multiple of hidden {arch.hidden_size}: 4x hidden used"
        if arch.num_experts:
            config.update(moe_num_experts=arch.num_experts, moe_top_k=arch.experts_per_token)
            note = (note + "; " if note else "") + "MLA and shared experts not expressible"
        path = workdir / f"{arch.name}.json"
        path.write_text(json.dumps(config))
        name = str(path)
    tp = 8 if arch.params_total > 3e10 else 1
    gpus = max(tp, gpus - gpus % tp)
    return {"model_name": name, "gpu_name": LLMA_GPUS[run.gpu], "total_num_tokens": int(run.tokens),
            "seq_len": run.seq_len, "batch_size_per_gpu": 1, "total_num_gpus": gpus, "tp_size": tp, "ds_zero": 3,
            "activation_recomputation": 2, "flops_efficiency": 0.5, "mlp_gated_linear_units": arch.gated_mlp}, note


def _validation_summary(runs: list[Any]) -> None:
    """Leave-one-out, organisation-grouped and nested grouped CV of the shipped feature set, and the serving check."""
    from truecost.estimate.fitting import fit_priors, summary
    from truecost.estimate.runs import read_runs
    from truecost.estimate.serving_validation import validate

    all_runs = read_runs(DEFAULT_RUNS)
    _, report = fit_priors(all_runs)
    for label in ("leave_one_out", "grouped_cv", "nested_grouped_cv"):
        s = summary(report[label])
        print(f"{label:18s} median |error| {s['median_abs_error']:.1%}  p10-p90 coverage {s['coverage']:.0%} "
              f"(n={s['runs']}; groups = organisations)")
    served = validate()
    print(f"serving: median |error| {served['median_abs_error']:.1%} on {served['n']} published measurements "
          f"{ {k: f'{v:.1%}' for k, v in served['median_abs_error_by_metric'].items()} }")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=DEFAULT_RUNS)
    parser.add_argument("--tiers", default="A,A-")
    parser.add_argument("--heldout", action="store_true", help="score the package's held-out runs instead")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT.parent / "src"))
    from truecost.estimate.calibration import imputed_gpus
    from truecost.estimate.runs import heldout_runs, read_runs, run_spec
    from truecost.estimate.training import estimate_training, model_flops, resolve

    runs = read_runs(args.runs, tiers=tuple(args.tiers.split(",")))
    if args.heldout:
        runs = heldout_runs()
    python, why = ensure_peer()
    rows, jobs, notes = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            spec = run_spec(run)
            arch, gpu = resolve(spec)
            est = estimate_training(spec, with_levers=False)
            gpus = run.num_gpus or imputed_gpus(model_flops(arch, spec), gpu.peak16_tflops)
            peak16 = gpu.peak16_tflops
            six_nd = 6 * run.params_active * run.tokens / (0.40 * peak16 * 1e12) / 3600
            rows.append({"run": run, "truecost": est.gpu_hours, "6nd": six_nd, "gpus": gpus})
            job, note = llm_analysis_job(run, spec, arch, gpus, Path(tmp))
            jobs.append(job)
            if note:
                notes[run.model] = note
        peer: list[dict[str, Any]] = [{"error": why}] * len(rows)
        if python is not None:
            jobs_file = Path(tmp) / "jobs.json"
            jobs_file.write_text(json.dumps(jobs))
            done = subprocess.run([str(python), "-c", RUNNER, str(jobs_file)], capture_output=True, text=True,
                                  timeout=900)
            peer = json.loads(done.stdout) if done.returncode == 0 else [{"error": done.stderr[-160:]}] * len(rows)

    def err(pred: float | None, true: float) -> str:
        return "n/a" if pred is None else f"{pred / true - 1:+.0%}"

    header = f"{'run':28s} {'GPU':10s} {'reported GPU-h':>15s} {'truecost p50':>13s} {'err':>6s} {'in p10-p90':>10s}" \
             f" {'6ND@40%':>7s} {'llm-analysis':>12s} {'llm-a params':>12s}"
    print(header)
    print("-" * len(header))
    errors: dict[str, list[float]] = {"truecost": [], "6nd": [], "llm-analysis": []}
    inside = 0
    for row, res in zip(rows, peer, strict=True):
        run, q = row["run"], row["truecost"]
        peer_hours = res.get("gpu_hours")
        ok = q["p10"] <= run.gpu_hours <= q["p90"]
        inside += ok
        errors["truecost"].append(abs(q["p50"] / run.gpu_hours - 1))
        errors["6nd"].append(abs(row["6nd"] / run.gpu_hours - 1))
        if peer_hours:
            errors["llm-analysis"].append(abs(peer_hours / run.gpu_hours - 1))
        params = f"{res['params'] / 1e9:.1f}B" if res.get("params") else "-"
        print(f"{run.model[:28]:28s} {run.gpu:10s} {run.gpu_hours:>15,.0f} {q['p50']:>13,.0f} "
              f"{err(q['p50'], run.gpu_hours):>6s} {'yes' if ok else 'NO':>10s} {err(row['6nd'], run.gpu_hours):>7s} "
              f"{err(peer_hours, run.gpu_hours):>12s} {params:>12s}")
    print("-" * len(header))
    for name, values in errors.items():
        median = f"{statistics.median(values):.1%}" if values else "not run"
        print(f"median |error| {name:13s} {median:>7s}  ({len(values)} of {len(rows)} runs)")
    print(f"truecost p10-p90 coverage: {inside}/{len(rows)} = {inside / len(rows):.0%}")
    if not args.heldout:
        _validation_summary(runs)
    if errors["llm-analysis"]:
        ratio = statistics.median(errors["llm-analysis"]) / statistics.median(errors["truecost"])
        print(f"llm-analysis median error / truecost median error = {ratio:.2f}x")
    failures = {r.model: p["error"] for r, p in zip(runs, peer, strict=True) if "error" in p}
    for model, message in failures.items():
        print(f"llm-analysis could not run {model}: {message}")
    for model, note in notes.items():
        print(f"llm-analysis input for {model}: {note}")


if __name__ == "__main__":
    main()
