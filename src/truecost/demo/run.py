"""Run the demo and write its report: the Python entry point behind `truecost demo`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from truecost.config import Config
from truecost.demo.pipeline import SCALES, DemoContext, ProgressFn, pick_threads, run_demo
from truecost.errors import UserError


def peak_rss_gib() -> float:
    """This process's peak resident memory so far, in GiB (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def quiet_omp_threads() -> None:
    """Let torch's idle OpenMP threads sleep rather than spin (unless the user set OMP_WAIT_POLICY).

    On a machine whose cores other jobs share, spinning threads burn the cores the working ones wait for: measured
    2026-12-06 on 2 busy cores (load 4-7), scoring 40 held-out documents with 2 threads took a median 25.5 CPU-s
    (20-41, 4 runs) and 40 s spinning, 9.3 CPU-s (9.1-9.5, 3 runs) and 11 s passive; 24 generations 105 CPU-s and
    225 s against 14 CPU-s and 26 s (1 run each). It must be set before torch first loads its OpenMP runtime, so it
    has no effect when torch was imported already.
    """
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def demo(out_dir: str | Path = "truecost-demo", scale: str = "small", seed: int = 0, config: Config | None = None,
         ledger: Any = None, say: ProgressFn | None = None, threads: int | None = None) -> dict[str, Any]:
    """Run every step, then the TCO from the demo's own ledger runs; write report.html and report.json."""
    quiet_omp_threads()
    import torch

    from truecost.demo.report import build_demo_report
    from truecost.demo.summary import effects
    from truecost.estimate.tco import tco_from_ledger
    from truecost.ledger import Ledger
    from truecost.report import write_report

    if scale not in SCALES:
        raise UserError(f"unknown scale {scale!r}; choose one of: {', '.join(SCALES)}")
    cfg = config or Config()
    ledger = ledger or Ledger(config_url=cfg.ledger.url)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out}: {exc.strerror}") from exc
    n_threads = pick_threads(threads)
    torch.set_num_threads(n_threads)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with ledger.run("demo", f"demo ({scale}, seed {seed})", params={"scale": scale, "seed": seed,
                                                                     "threads": n_threads},
                    prices=cfg.compute_prices()) as meter:
        ctx = DemoContext(out_dir=out, scale=SCALES[scale], seed=seed, config=cfg, ledger=ledger, threads=n_threads,
                          demo_run_id=meter.id, say=say or (lambda _m: None))
        result = run_demo(ctx)
        model = "SmolLM2-135M-Instruct + LoRA r16" if ctx.scale.real else "tiny random-init Llama + LoRA"
        found = effects(result["measured"], ctx.measured.pop("_arms"), model, seed)
        result["measured"].pop("_flags", None)
        meter.results["effects"] = found
    # The TCO reads the finished runs of this demo's tree: every input a step measured replaces its default.
    tco = tco_from_ledger(ledger, run_tree=meter.id, config=cfg)
    headline = {"difference_usd": tco.difference_usd, "by_basis": dict(tco.by_basis),
                "measured_share": tco.by_basis["measured"] / tco.difference_usd if tco.difference_usd else None,
                "by_input": dict(tco.by_input)}
    timings = {**result["timings"], "total": {"wall_seconds": time.perf_counter() - wall0,
                                              "cpu_seconds": time.process_time() - cpu0,
                                              "peak_rss_gib": peak_rss_gib()}}
    doc = {"measured": result["measured"], "effects": found, "headline": headline, "tco": tco.to_dict(),
           "timings": timings, "threads": n_threads, "ledger_run_id": meter.id,
           "effects_interval": f"one seed of {model}; every interval is a 95% interval over held-out items "
                               "(documents, prompts or planted canaries; paired where both models saw the same "
                               "items), not over seeds"}
    html_path, json_path = write_report(build_demo_report(doc, tco), out, extra=doc)
    return {"report_html": str(html_path.resolve()), "report_json": str(json_path.resolve()), **doc,
            "extrapolated": {"tco": {k: doc["tco"][k] for k in ("well", "poor", "difference_usd")},
                             "horizon_months": tco.horizon_months, "model": tco.model}}
