"""`truecost train` and `truecost tune`: parse, call `truecost.train`, render."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from truecost.cli._common import JSON_OPTION, console, err_console, load_config, open_ledger, print_json
from truecost.errors import UserError

CONFIG_ARG = typer.Argument(..., help="Training config (YAML); see examples/train-tiny.yaml and docs/train.md.")
SET_OPTION = typer.Option([], "--set", help="Override one field, e.g. --set optim.lr=1e-3 (repeatable).")


def _load(path: Path, overrides: list[str]) -> Any:
    import yaml

    from truecost.train.config import load_train_config, with_value

    config = load_train_config(path)
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected FIELD=VALUE, e.g. optim.lr=1e-3")
        name, raw = item.split("=", 1)
        config = with_value(config, name.strip(), yaml.safe_load(raw))
    return config


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _log(message: str) -> None:
    if _is_main_process():
        err_console.print(message, highlight=False)


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}"


def _render_train(result: Any) -> None:
    from rich.table import Table

    table = Table(title=f"train run {result.run_id or '(not recorded)'}: {result.stopped_by}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in (
        ("steps", f"{result.start_step} -> {result.steps}"),
        ("eval loss", f"{result.eval_loss_start:.4f} -> {result.eval_loss_end:.4f} (best {result.best_eval_loss:.4f})"),
        ("stopped by", result.stopped_by + (f" ({result.budget_limit})" if result.budget_limit else "")),
        ("tokens", f"{result.tokens:,}"),
        ("tokens/s", f"{result.tokens_per_second:,.0f}"),
        ("MFU", f"{result.mfu:.1%}" if result.mfu is not None else "-"),
        ("device / precision", f"{result.device} x{result.world_size} / {result.precision}"
                               f"{' + grad checkpointing' if result.gradient_checkpointing else ''}"),
        ("parameters (trainable)", f"{result.params_total:,} ({result.params_trainable:,})"),
        ("wall / CPU seconds", f"{result.wall_seconds:.1f} / {result.cpu_seconds:.1f}"),
        ("energy kWh", _fmt(result.energy_kwh)),
        ("cost USD", f"{result.cost_usd:.6f}"),
        ("checkpoint", result.checkpoint or "-"),
        ("task / strategy", f"{result.task} / {result.strategy}"),
    ):
        table.add_row(label, value)
    console.print(table)
    compare = Table(title="estimate (before) vs measured")
    for column in ("", "estimated", "measured", "measured / estimated"):
        compare.add_column(column, justify="right" if column else "left")
    for key, row in result.measured_vs_estimate.items():
        ratio = row.get("ratio")
        compare.add_row(key, _fmt(row["estimated"]), _fmt(row["measured"]), f"{ratio:.2f}x" if ratio else "-")
    console.print(compare)


def _render_plan(result: Any) -> None:
    from rich.table import Table

    table = Table(title=f"training plan on {result.gpu} ({result.device_memory_gib:.1f} GiB per device)")
    hours = "core-h" if result.device == "cpu" else "GPU-h"  # the estimate counts a CPU core as one device
    for column in ("", "changes", "fits", "memory GiB", "wall h", hours, "cost USD"):
        table.add_column(column, justify="left" if column in ("", "changes", "fits") else "right")
    rows = [result.as_configured] + ([result.would_run] if result.would_run else []) + result.alternatives
    for row in rows:
        table.add_row(row.label, row.changes, "yes" if row.fits else "NO", f"{row.memory_gib:.2f}",
                      _fmt(row.wall_hours, 3), _fmt(row.gpu_hours, 3), _fmt(row.cost_usd, 3))
    console.print(table)
    if result.cheapest is None:
        console.print("no variant of this config fits: choose a smaller model.architecture or more memory")


def _render_tune(result: Any) -> None:
    from rich.table import Table

    table = Table(title=f"study {result.study_name}: best trial {result.best_trial} "
                        f"(eval loss {_fmt(result.best_value)})")
    for column in ("trial", "state", "steps", "best eval loss", "cost USD", "params"):
        table.add_column(column, justify="right" if column in ("steps", "best eval loss", "cost USD") else "left")
    for trial in result.trials:
        table.add_row(str(trial.number), trial.state, f"{trial.steps}/{trial.max_steps}",
                      _fmt(trial.best_eval_loss), f"{trial.cost_usd:.6f}",
                      ", ".join(f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in trial.params.items()))
    console.print(table)
    console.print(f"total cost ${result.total_cost_usd:.6f}; pruning ran {result.steps_run} of "
                  f"{result.steps_if_unpruned} steps: {result.compute_saved_fraction:.0%} of the compute "
                  f"(~${result.cost_saved_usd:.6f}) saved; best params {result.best_params}")


def register(app: typer.Typer) -> None:
    """Add the train and tune commands to the root app."""

    @app.command("train")
    def train(
        config_path: Path = CONFIG_ARG,
        plan: bool = typer.Option(False, "--plan", help="Print the estimate and the cheapest config that fits; "
                                                        "do not train."),
        resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint in the run's "
                                                            "output_dir, at the same step."),
        overrides: list[str] = SET_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Train or fine-tune a Hugging Face model under a hard budget, metered into the ledger.

        Before starting, the estimate predicts memory and cost for this exact run: a run that cannot fit is
        refused with the changes that would make it fit, and gradient checkpointing is turned on when that alone
        makes it fit. The run stops at the first budget limit (dollars, GPU-hours, minutes, tokens) or by early
        stopping, always with a checkpoint; checkpoints are also written every `checkpoint.every_steps` steps or
        `checkpoint.every_minutes` minutes, so a killed run resumes (--resume) losing at most one interval, with
        what it spent counted. Training runs on the Hugging Face Trainer (TRL's DPOTrainer for `task: dpo`).
        Several GPUs or machines: `torchrun --nproc_per_node N -m truecost train CONFIG` (DDP, or FSDP/DeepSpeed
        with `distributed.strategy`). Exit status 1 when the run failed (a non-finite loss).
        """
        config = _load(config_path, overrides)
        project = load_config()
        if plan:
            from truecost.train.plan import plan as make_plan

            result = make_plan(config, project=project)
            if as_json:
                print_json(result.to_dict())
            else:
                _render_plan(result)
            return
        from truecost.train import train as run_training

        ledger = open_ledger() if _is_main_process() else None
        outcome = run_training(config, resume=resume, ledger=ledger, project=project, log=_log)
        if not _is_main_process():
            return
        if as_json:
            print_json(outcome.to_dict())
        else:
            _render_train(outcome)
        if outcome.status == "failed":  # e.g. a non-finite loss: the result is shown, the exit status says so
            err_console.print(f"train: the run failed ({outcome.failure}); nothing after the last good "
                              f"checkpoint was saved", highlight=False, markup=False)
            raise typer.Exit(1)

    @app.command("tune")
    def tune(
        config_path: Path = CONFIG_ARG,
        trials: int | None = typer.Option(None, "--trials", min=1, help="Trials for this worker (default: "
                                                                        "tune.trials in the config)."),
        overrides: list[str] = SET_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Tune hyperparameters with Optuna, pruning poor trials early; every trial's cost is recorded.

        The search space is the config's `tune.search_space` (dotted field names). The study is stored in the
        ledger's database, so workers on several machines pointing at the same PostgreSQL ledger share it.
        """
        from truecost.train.tune import tune as run_tuning

        config = _load(config_path, overrides)
        result = run_tuning(config, trials=trials, ledger=open_ledger(), project=load_config(), log=_log)
        if as_json:
            print_json(result.to_dict())
        else:
            _render_tune(result)
