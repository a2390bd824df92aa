"""Run the demo and write its report: the Python entry point behind `truecost demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from truecost.config import Config
from truecost.demo.pipeline import SCALES, DemoContext, ProgressFn, run_demo
from truecost.errors import UserError


def demo(out_dir: str | Path = "truecost-demo", scale: str = "small", seed: int = 0, config: Config | None = None,
         ledger: Any = None, say: ProgressFn | None = None) -> dict[str, Any]:
    """Run every step, write report.html and report.json into `out_dir`, and return the JSON document."""
    from truecost.demo.report import build_demo_report
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
    with ledger.run("demo", f"demo ({scale}, seed {seed})", params={"scale": scale, "seed": seed},
                    prices=cfg.compute_prices()) as meter:
        ctx = DemoContext(out_dir=out, scale=SCALES[scale], seed=seed, config=cfg, ledger=ledger,
                          demo_run_id=meter.id, say=say or (lambda _m: None))
        result = run_demo(ctx)
        extrapolated = result["extrapolated"]
        meter.results["levers"] = [{"name": "demo: well vs poorly prepared (TCO)",
                                    "saving_usd": extrapolated["tco"]["difference_usd"]}]
        meter.results["tco_difference_usd"] = extrapolated["tco"]["difference_usd"]
        html_path, json_path = write_report(build_demo_report(result), out,
                                            extra={"measured": result["measured"], "extrapolated": extrapolated,
                                                   "timings": result["timings"], "ledger_run_id": meter.id})
    return {"report_html": str(html_path.resolve()), "report_json": str(json_path.resolve()),
            "ledger_run_id": meter.id, "measured": result["measured"], "extrapolated": extrapolated,
            "timings": result["timings"]}
