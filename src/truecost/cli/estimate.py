"""`truecost estimate ...` and `truecost gpus`: what training and serving will cost, before spending."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from truecost.cli._common import JSON_OPTION, console, err_console, load_config, print_json
from truecost.errors import UserError, existing_file

if TYPE_CHECKING:
    from truecost.config import Config
    from truecost.estimate.tco import TcoResult

MODEL_OPTION = typer.Option(None, "--model", help="Catalogue model name, e.g. llama-3.1-8b (see docs/estimate.md).")
MODEL_CONFIG_OPTION = typer.Option(None, "--model-config", help="Path to a Hugging Face config.json to count "
                                   "exactly (the model's config; the project file is the global --config).")
# Before --model-config this was --config, which everywhere else names truecost.toml: still read, with a warning.
OLD_CONFIG_OPTION = typer.Option(None, "--config", hidden=True, help="Deprecated: use --model-config.")
PARAMS_OPTION = typer.Option(None, "--params", help="Parameter count instead of a model, e.g. 7B or 7e9.")
ACTIVE_OPTION = typer.Option(None, "--active-params", help="Active parameters per token (MoE), e.g. 13B.")
GPU_OPTION = typer.Option(None, "--gpu", help="GPU type (see `truecost gpus`); default: truecost.toml \\[hardware].")
PRICING_OPTION = typer.Option(None, "--pricing", help="on-demand | spot | reserved (default: truecost.toml).")
PRICE_OPTION = typer.Option(None, "--price-per-gpu-hour", help="Your own $/GPU-hour instead of the catalogue's.")


def _quantity(text: str | None, what: str) -> float | None:
    from truecost.units import parse_quantity

    if text is not None and text.strip().startswith("-"):
        raise UserError(f"{what} must be positive, got {text!r}")
    return None if text is None else parse_quantity(text, what=what)


def _model_config(model_config: Path | None, old_config: Path | None) -> Path | None:
    """The HF config.json path from --model-config, or from the deprecated --config with a warning."""
    if old_config is None:
        return model_config
    if model_config is not None:
        raise UserError("give --model-config only (--config is its old name)")
    err_console.print("warning: `estimate ... --config` is now --model-config (the global `truecost --config` "
                      "names truecost.toml); --config here will go", markup=False, highlight=False)
    return old_config


def _model_fields(model: str | None, config_path: Path | None, params: str | None, active: str | None,
                  cfg: Config) -> dict[str, Any]:
    """Exactly one way of naming the model; the project's [target] when none is given."""
    given = [x for x in (model, config_path, params) if x is not None]
    if len(given) > 1:
        raise UserError("give only one of --model, --model-config and --params")
    if config_path is not None:
        from truecost.estimate import architecture_from_hf_config

        existing_file(config_path, "--model-config")
        try:
            data = json.loads(config_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"--model-config {config_path}: not valid JSON ({exc})") from exc
        return {"architecture": architecture_from_hf_config(data, config_path.parent.name or config_path.stem)}
    if params is not None:
        return {"params": _quantity(params, "--params"), "active_params": _quantity(active, "--active-params")}
    if model is not None:
        from truecost.estimate.catalogue import find_model

        return {"model": find_model(model).name}
    if cfg.target.params is not None:
        return {"params": cfg.target.params}
    from truecost.estimate.catalogue import find_model

    return {"model": find_model(cfg.target.model).name}


def _q(values: dict[str, float], fmt: str = "{:,.0f}") -> str:
    return " / ".join(fmt.format(values[q]) for q in ("p10", "p50", "p90"))


def _render_training(result: dict[str, Any]) -> None:
    from rich.table import Table

    from truecost.units import format_quantity

    table = Table(title=f"Training estimate: {result['model']} on {result['gpus']}x {result['gpu']} "
                        "(p10 / p50 / p90)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("parameters (total / active / trained)",
                  f"{format_quantity(result['params_total'])} / {format_quantity(result['params_active'])} / "
                  f"{format_quantity(result['params_trainable'])}")
    table.add_row("tokens", format_quantity(result["tokens"]))
    table.add_row("model FLOPs", f"{result['flops']:.3e}")
    table.add_row("utilisation (MFU, end to end)", f"{result['mfu']:.1%} (goodput {result['goodput']:.1%})")
    table.add_row("GPU-hours", _q(result["gpu_hours"]))
    table.add_row("wall-clock hours", _q(result["wall_hours"], "{:,.1f}"))
    table.add_row(f"cost USD (at ${result['usd_per_gpu_hour']:.2f}/GPU-h, "
                  f"{result['assumptions']['usd_per_gpu_hour']['basis']})", _q(result["cost_usd"]))
    table.add_row("energy kWh", _q(result["energy_kwh"]))
    table.add_row("CO2 kg", _q(result["co2_kg"]))
    mem = result["memory_per_gpu_gib"]
    table.add_row("memory per GPU GiB", f"{mem['total']:.1f} of {result['device_memory_gib']:.0f} "
                  f"({'fits' if result['fits_in_memory'] else 'DOES NOT FIT'})")
    for key in ("weights", "gradients", "optimizer", "activations", "other"):
        table.add_row(f"  {key}", f"{mem[key]:.2f}")
    console.print(table)
    if result["levers"]:
        levers = Table(title="Levers, by dollars saved (p50)")
        levers.add_column("lever")
        levers.add_column("saves USD", justify="right")
        levers.add_column("note")
        for lever in result["levers"]:
            levers.add_row(lever["name"], f"{lever['saving_usd']:,.0f}", lever["note"])
        console.print(levers)


def _training(cfg: Config, fields: dict[str, Any]) -> dict[str, Any]:
    from truecost.estimate.costing import target_spec
    from truecost.estimate.training import estimate_training

    # Start from the project's plan and replace what the command line gives.
    if "params" in fields or "architecture" in fields:
        fields.setdefault("model", None)
    from truecost.estimate.calibration import USER_PRIORS_FILENAME, load_priors

    spec = target_spec(cfg, **{k: v for k, v in fields.items() if v is not None or k == "model"})
    return estimate_training(spec, priors=load_priors(USER_PRIORS_FILENAME)).to_dict()


def estimate_callback(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Estimate training, right-sizing, serving and 12-month cost; no sub-command: the project's target."""
    if ctx.invoked_subcommand is not None:
        return
    result = _training(load_config(), {})
    if as_json:
        print_json(result)
    else:
        _render_training(result)


def train_command(
    model: str | None = MODEL_OPTION, model_config: Path | None = MODEL_CONFIG_OPTION,
    params: str | None = PARAMS_OPTION, config: Path | None = OLD_CONFIG_OPTION,
    active_params: str | None = ACTIVE_OPTION,
    tokens: str | None = typer.Option(None, "--tokens", help="Training tokens, e.g. 2T (default: truecost.toml)."),
    gpu: str | None = GPU_OPTION,
    gpus: int | None = typer.Option(None, "--gpus", min=1, help="Number of GPUs (default: truecost.toml)."),
    precision: str | None = typer.Option(None, "--precision", help="bf16 | fp16 | fp8 | fp32."),
    seq_len: int | None = typer.Option(None, "--seq-len", min=1, help="Sequence length in tokens."),
    method: str | None = typer.Option(None, "--method", help="full | lora | qlora."),
    lora_rank: int = typer.Option(16, "--lora-rank", min=1, help="LoRA rank (adapters on every linear layer)."),
    zero: int = typer.Option(3, "--zero", min=0, max=3, help="ZeRO stage 0-3 (1 optimizer, 2 +grads, 3 +weights)."),
    tp: int = typer.Option(1, "--tp", min=1, help="Tensor-parallel degree."),
    pp: int = typer.Option(1, "--pp", min=1, help="Pipeline-parallel degree."),
    recompute: str = typer.Option("selective", "--recompute", help="none | selective | full."),
    micro_batch: int = typer.Option(1, "--micro-batch", min=1, help="Sequences per GPU per step."),
    pricing: str | None = PRICING_OPTION, price: float | None = PRICE_OPTION,
    mfu: float | None = typer.Option(None, "--mfu", help="Override the fitted utilisation (0-1)."),
    device_memory_gib: float | None = typer.Option(None, "--device-memory-gib", help="Override GPU memory."),
    power_utilisation: float | None = typer.Option(None, "--power-utilisation",
                                                   help="Average GPU draw as a share of TDP (default 0.7)."),
    pue: float | None = typer.Option(None, "--pue", help="Data-centre PUE (default: truecost.toml, 1.2)."),
    grid: float | None = typer.Option(None, "--grid-kg-co2-per-kwh", help="Grid carbon intensity."),
    as_json: bool = JSON_OPTION,
) -> None:
    """GPU-hours, wall time, $, energy, CO2 (p10/p50/p90), memory per GPU and levers for one training run."""
    cfg = load_config()
    fields: dict[str, Any] = {
        **_model_fields(model, _model_config(model_config, config), params, active_params, cfg),
        "tokens": _quantity(tokens, "--tokens"), "gpu": gpu, "gpus": gpus, "precision": precision,
        "seq_len": seq_len, "method": method,
        "lora_rank": lora_rank, "zero": zero, "tp": tp, "pp": pp, "recompute": recompute,
        "micro_batch": micro_batch, "pricing": pricing, "price_per_gpu_hour": price, "mfu": mfu,
        "device_memory_gib": device_memory_gib, "power_utilisation": power_utilisation, "pue": pue,
        "grid_kg_co2_per_kwh": grid}
    result = _training(cfg, fields)
    if as_json:
        print_json(result)
    else:
        _render_training(result)


def size_command(
    budget_usd: float | None = typer.Option(None, "--budget-usd", help="Dollar budget for pre-training."),
    compute: str | None = typer.Option(None, "--compute", help="FLOP budget instead, e.g. 1e23."),
    gpu: str | None = GPU_OPTION,
    gpus: int | None = typer.Option(None, "--gpus", min=1, help="Number of GPUs (default: truecost.toml)."),
    pricing: str | None = PRICING_OPTION, price: float | None = PRICE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Compute-optimal (Chinchilla) model size and tokens for a dollar or FLOP budget, and what it buys."""
    from truecost.estimate.right_size import right_size

    if (budget_usd is None) == (compute is None):
        raise UserError("give exactly one of --budget-usd and --compute")
    if budget_usd is not None and not 0 < budget_usd < float("inf"):  # NaN fails too
        raise UserError(f"--budget-usd must be positive, got {budget_usd}")
    result = right_size(load_config(), budget_usd=budget_usd, flops=_quantity(compute, "--compute"), gpu=gpu,
                        gpus=gpus, pricing=pricing, price_per_gpu_hour=price)
    if as_json:
        print_json(result)
        return
    from rich.table import Table

    from truecost.units import format_quantity

    opt = result["compute_optimal"]
    table = Table(title=f"Compute-optimal model for {opt['flops']:.3g} FLOPs on {result['gpu']}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for label, value in (("parameters", format_quantity(opt["params"])), ("tokens", format_quantity(opt["tokens"])),
                         ("tokens per parameter", f"{opt['tokens_per_param']:.1f}"),
                         ("predicted loss", f"{opt['loss']:.3f}"), ("GPU-hours (p50)", f"{opt['gpu_hours']:,.0f}"),
                         (f"cost USD (p50; {result['usd_per_gpu_hour']['basis']} "
                          f"${result['usd_per_gpu_hour']['value']:.2f}/GPU-h)", f"{opt['cost_usd']:,.0f}")):
        table.add_row(label, value)
    console.print(table)
    buys = Table(title="What the same compute buys at other sizes")
    for col in ("parameters", "tokens", "tokens/param", "predicted loss"):
        buys.add_column(col, justify="right")
    for row in result["alternatives"]:
        buys.add_row(format_quantity(row["params"]), format_quantity(row["tokens"]),
                     f"{row['tokens_per_param']:.1f}", f"{row['loss']:.3f}")
    console.print(buys)


def serve_command(
    model: str | None = MODEL_OPTION, model_config: Path | None = MODEL_CONFIG_OPTION,
    params: str | None = PARAMS_OPTION, config: Path | None = OLD_CONFIG_OPTION,
    active_params: str | None = ACTIVE_OPTION, gpu: str | None = GPU_OPTION,
    requests_per_day: str | None = typer.Option(None, "--requests-per-day", help="Requests per day, e.g. 100k."),
    prompt_tokens: int | None = typer.Option(None, "--prompt-tokens", min=0, help="Prompt tokens per request."),
    output_tokens: int | None = typer.Option(None, "--output-tokens", min=1, help="Output tokens per request."),
    latency_p95_ms: float | None = typer.Option(None, "--latency-p95-ms", help="Latency target per request."),
    precision: str = typer.Option("bf16", "--precision", help="Weights: bf16 | fp16 | fp8 | int4."),
    tp: int | None = typer.Option(None, "--tp", min=1, help="Tensor-parallel degree (default: fits)."),
    pricing: str | None = PRICING_OPTION, price: float | None = PRICE_OPTION,
    api_model: str | None = typer.Option(None, "--api-model", help="Compare with this API's catalogue price."),
    api_input: float | None = typer.Option(None, "--api-usd-per-1m-input", help="API $/1M prompt tokens."),
    api_output: float | None = typer.Option(None, "--api-usd-per-1m-output", help="API $/1M output tokens."),
    as_json: bool = JSON_OPTION,
) -> None:
    """KV cache, batch, prefill/decode speed, GPUs needed, $ per 1M tokens and per month; vs an API price."""
    from truecost.estimate.costing import target_spec, token_price_usd
    from truecost.estimate.serving import estimate_serving
    from truecost.estimate.training import resolve

    cfg = load_config()
    fields = _model_fields(model, _model_config(model_config, config), params, active_params, cfg)
    if "params" in fields or "architecture" in fields:
        fields["model"] = None
    spec = target_spec(cfg, **{k: v for k, v in {**fields, "gpu": gpu}.items() if v is not None or k == "model"})
    arch, gpu_row = resolve(spec)
    t = cfg.target
    prompt = t.prompt_tokens if prompt_tokens is None else prompt_tokens
    output = t.output_tokens if output_tokens is None else output_tokens
    api_request = None
    for option, value in (("--api-usd-per-1m-input", api_input), ("--api-usd-per-1m-output", api_output)):
        if value is not None and not 0 <= value < float("inf"):  # NaN fails too
            raise UserError(f"{option} must be a non-negative finite price, got {value}")
    if api_input is not None or api_output is not None:
        api_request = (prompt * (api_input or 0.0) + output * (api_output or 0.0)) / 1e6
        api_model = api_model or "given price"
    elif api_model is not None:
        api_request = token_price_usd(api_model, prompt, output, cfg)
        if api_request is None:
            from truecost.estimate.catalogue import api_prices

            raise UserError(f"no price for API model {api_model!r}; choose one of: "
                            f"{', '.join(sorted(api_prices()))} or pass --api-usd-per-1m-input/output")
    rpd = float(_quantity(requests_per_day, "--requests-per-day") or t.requests_per_day)
    result = estimate_serving(arch, gpu_row, requests_per_day=rpd, prompt_tokens=prompt, output_tokens=output,
                              precision=precision,  # type: ignore[arg-type]
                              latency_p95_ms=latency_p95_ms, pricing=pricing or cfg.hardware.pricing,
                              price_per_gpu_hour=price or cfg.hardware.price_per_gpu_hour,
                              api_usd_per_request=api_request, api_model=api_model, tensor_parallel=tp).to_dict()
    if as_json:
        print_json(result)
        return
    from rich.table import Table

    table = Table(title=f"Serving {result['model']} on {result['gpu']} ({result['precision']})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("GPUs (replicas x tensor parallel)",
                  f"{result['gpus']} ({result['replicas']} x {result['tensor_parallel']})")
    for label, key, fmt in (
        ("weights GiB", "weights_gib", "{:,.1f}"),
        ("KV cache bytes per token", "kv_cache_bytes_per_token", "{:,.0f}"),
        ("max batch (memory)", "max_batch", "{}"), ("batch used", "batch", "{}"),
        ("prefill tokens/s", "prefill_tokens_per_s", "{:,.0f}"),
        ("decode tokens/s (all sequences)", "decode_tokens_per_s", "{:,.0f}"),
        ("latency per request ms", "latency_ms", "{:,.0f}"),
        (f"USD per month ({result['assumptions']['usd_per_gpu_hour']['basis']} ${result['usd_per_gpu_hour']:.2f}"
         "/GPU-h)", "usd_per_month", "{:,.0f}"),
        ("USD per 1M tokens", "usd_per_1m_tokens", "{:,.3f}"),
        ("USD per 1M output tokens", "usd_per_1m_output_tokens", "{:,.3f}")):
        table.add_row(label, fmt.format(result[key]))
    if result["api"]:
        api = result["api"]
        table.add_row(f"API {api['model']} USD per month", f"{api['usd_per_month']:,.0f}")
        table.add_row("self-hosting / API", f"{api['self_hosting_vs_api']:.2f}x")
    console.print(table)


def tco_command(
    project: Path | None = typer.Option(None, "--project", help="Project file (default: ./truecost.toml)."),
    overrides: list[str] = typer.Option([], "--set", help="Override, e.g. poor.retrains_per_year=6."),
    from_ledger: bool = typer.Option(False, "--from-ledger",
                                     help="Take every input the ledger measured from its runs."),
    ledger_url: str | None = typer.Option(None, "--ledger", help="Ledger URL for --from-ledger (default: "
                                          "the global --ledger, $TRUECOST_LEDGER or truecost.toml)."),
    run_tree: str | None = typer.Option(None, "--run-tree", help="Read only this run and its descendants."),
    arms: list[str] = typer.Option([], "--arm", help="RUN_ID=poor|well: the project a run (and its "
                                   "descendants) belongs to; untagged runs are the well-prepared project's."),
    report: Path | None = typer.Option(None, "--report", help="Also write report.html and report.json here."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Cost of ownership over the horizon, well- vs poorly-prepared; every input with its basis (measured with
    run ids, sourced with citation, or assumed), the difference split by basis, and its sensitivity."""
    from truecost.config import load_config as load_project

    cfg = load_project(project) if project is not None else load_config()
    if not from_ledger and (ledger_url or run_tree or arms):
        raise UserError("--ledger, --run-tree and --arm need --from-ledger")
    result = _tco_result(cfg, _pairs(overrides, "--set", "poor.retrains_per_year=6"),
                         _pairs(arms, "--arm", "1a2b3c=poor") if from_ledger else None, from_ledger,
                         ledger_url, run_tree)
    data = result.to_dict()
    if report is not None:
        data["report_html"], data["report_json"] = _write_tco_report(result, report)
    if as_json:
        print_json(data)
        return
    _render_tco(result)
    if report is not None:
        console.print(f"report: {data['report_html']}", highlight=False, markup=False)


def calibrate_command(
    ledger_url: str | None = typer.Option(None, "--ledger", help="Ledger URL (default: the global --ledger, "
                                          "$TRUECOST_LEDGER or truecost.toml)."),
    out: Path = typer.Option(Path("truecost-priors.json"), "--out",
                             help="Where to write your calibrated priors (read by `estimate train`)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the offsets without writing the file."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Learn your utilisation from the measured train/tune runs in the ledger, shrunk towards the published prior
    when you have few runs; writes truecost-priors.json beside truecost.toml."""
    from truecost.cli._common import open_ledger
    from truecost.estimate.calibration import load_priors
    from truecost.estimate.user_calibration import calibrate_from_ledger, write_user_priors

    result = calibrate_from_ledger(open_ledger(ledger_url), load_priors())
    data = result.to_dict()
    if not dry_run and result.runs:
        data["written_to"] = str(write_user_priors(result, out).resolve())
    if as_json:
        print_json(data)
        return
    if not result.runs:
        console.print(f"no measured train/tune run to calibrate on ({len(result.skipped)} skipped); nothing written",
                      highlight=False, markup=False)
    for gpu, factor in data["mfu_factor"].items():
        label = "all GPUs" if gpu == "*" else gpu
        console.print(f"{label}: utilisation x{factor:.3f} of the published prior", highlight=False, markup=False)
    console.print(f"{len(result.runs)} run(s) read; the prior weighs as much as {result.prior_strength_runs:.1f} "
                  f"run(s); {len(result.skipped)} skipped", highlight=False, markup=False)
    if "written_to" in data:
        console.print(f"written: {data['written_to']}", highlight=False, markup=False)


def gpus_command(as_json: bool = JSON_OPTION) -> None:
    """The GPU catalogue: dense peaks, memory, bandwidth, power and median catalogued $/GPU-hour."""
    from truecost.estimate.catalogue import PRICINGS, gpus, price_basis

    rows = []
    for g in gpus(load_config().gpus):
        prices: dict[str, float | None] = {}
        basis: dict[str, str] = {}
        for p in PRICINGS:
            try:
                found = price_basis(g, p)
            except UserError:
                prices[p] = None
                continue
            prices[p], basis[p] = found.usd_per_gpu_hour, found.describe()
        rows.append({**g.to_dict(), "usd_per_gpu_hour": prices, "price_basis": basis})
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="GPU catalogue (dense TFLOP/s; fp32 = CUDA cores, tf32 = tensor cores; median $/GPU-h of "
                        "one market, see `--json` for rows and sources)")
    for col in ("GPU", "mem GiB", "GB/s", "W", "link GB/s", "bf16", "fp8", "tf32", "fp32", "on-demand", "spot",
                "reserved"):
        table.add_column(col, justify="right" if col != "GPU" else "left")
    for r in rows:
        pk = r["peak_tflops"]
        table.add_row(r["name"], f"{r['memory_gib']:g}", f"{r['bandwidth_gb_s']:g}", f"{r['tdp_w']:g}",
                      f"{r['interconnect']} {r['interconnect_gb_s']:g}",
                      *(f"{pk[p]:g}" if p in pk else "-" for p in ("bf16", "fp8", "tf32", "fp32")),
                      *(f"{v:.2f}" if v is not None else "-" for v in r["usd_per_gpu_hour"].values()))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the `estimate` group (train, size, serve, tco) and `gpus` to the root app."""
    estimate_app = typer.Typer(help="Estimate FLOPs, memory, GPU-hours, dollars, energy and CO2 before spending. "
                                    "With no sub-command: the training estimate of truecost.toml's \\[target].",
                               invoke_without_command=True, no_args_is_help=False)

    estimate_app.callback()(estimate_callback)
    estimate_app.command("train")(train_command)
    estimate_app.command("size")(size_command)
    estimate_app.command("serve")(serve_command)
    estimate_app.command("tco")(tco_command)
    estimate_app.command("calibrate")(calibrate_command)
    app.add_typer(estimate_app, name="estimate")
    app.command("gpus")(gpus_command)


def _pairs(items: list[str], option: str, example: str) -> dict[str, str]:
    """NAME=VALUE options as a dict; a malformed one is a one-line error."""
    parsed: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"{option} {item!r}: expected NAME=VALUE, e.g. {example}")
        key, value = item.split("=", 1)
        parsed[key.strip()] = value.strip()
    return parsed


def _tco_result(cfg: Config, overrides: dict[str, str], arms: dict[str, str] | None, from_ledger: bool,
                ledger_url: str | None, run_tree: str | None) -> TcoResult:
    from truecost.estimate.tco import build_tco, tco_from_ledger

    if not from_ledger:
        return build_tco(cfg, overrides)
    from truecost.cli._common import open_ledger

    for value in (arms or {}).values():
        if value not in ("well", "poor"):
            raise UserError(f"--arm: the project must be well or poor, got {value!r}")
    return tco_from_ledger(open_ledger(ledger_url), run_tree=run_tree, arms=arms,  # type: ignore[arg-type]
                           config=cfg, overrides=overrides)


def _write_tco_report(result: Any, out: Path) -> tuple[str, str]:
    from truecost.report import write_report
    from truecost.report.tco_report import tco_report

    try:
        html_path, json_path = write_report(tco_report(result), out, extra={"tco": result.to_dict()})
    except OSError as exc:
        raise UserError(f"cannot write the report to {out}: {exc.strerror}") from exc
    return str(html_path.resolve()), str(json_path.resolve())


def _render_tco(result: Any) -> None:
    """Components side by side, then every input with its basis, then the split and the largest sensitivities."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{result.horizon_months}-month cost of {result.model}: well vs poorly prepared")
    for col in ("component", "well USD", "poor USD"):
        table.add_column(col, justify="left" if col == "component" else "right")
    for key in result.well:
        table.add_row(key.removesuffix("_usd").replace("_", " "), f"{result.well[key]:,.0f}",
                      f"{result.poor[key]:,.0f}")
    console.print(table)
    inputs = Table(title="Inputs: measured (ledger run ids), sourced (citation) or assumed (override with --set "
                         "NAME=VALUE or \\[estimate.tco])")
    for col in ("basis", "input", "project", "value", "from"):
        inputs.add_column(col, overflow="fold")
    for line in result.measured_lines():
        runs = f" [runs {', '.join(r[:8] for r in line['run_ids'])}]" if line["run_ids"] else ""
        inputs.add_row(line["basis"], line["input"], line["arm"], f"{line['value']:.4g} {line['unit']}",
                       escape(line["source"] + runs))
    console.print(inputs)
    split = ", ".join(f"{k} ${v:,.0f}" for k, v in result.by_basis.items())
    low, high = result.sensitivity_range_usd
    console.print(f"difference ${result.difference_usd:,.0f} = {split}; with the assumptions across their ranges "
                  f"${low:,.0f} to ${high:,.0f}", highlight=False, markup=False)
    for row in result.sensitivity[:5]:
        console.print(f"  {row.name} {row.low:g}..{row.high:g}: ${row.difference_at_low:,.0f} .. "
                      f"${row.difference_at_high:,.0f}", highlight=False, markup=False)
    for note in [*result.aligned, *result.ignored_overrides, *((result.ledger or {}).get("notes") or [])]:
        console.print(f"note: {escape(note)}", highlight=False)
    levers = result.optional_levers()
    if levers:
        console.print("optional assumed levers (off; nothing measured or sourced them): "
                      + ", ".join(f"--set {lv.to_dict()['set']}" for lv in levers), highlight=False, markup=False)
