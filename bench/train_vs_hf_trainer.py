"""`truecost train` (the Hugging Face Trainer plus truecost's callbacks) vs a bare `transformers.Trainer`, and a
pruned vs an unpruned tuning study.

1. Throughput: the same tiny Llama, the same packed tokens (stdlib docstrings), the same micro-batch, optimizer,
   schedule, precision and number of steps, trained by `truecost.train.train` and by a plain `Trainer`,
   alternately, in this one process. Speed is tokens per CPU-second of the whole call (the machine is shared, so
   wall time is noisy); each runner is repeated and reported as the median with the range (min-max), never the
   best run. Two peer configurations:
   - `bare`: the Trainer with no evaluation, logging or saving: the training loop alone (the headline);
   - `same job`: the Trainer also doing what truecost's run does: evaluating the same held-out slice at the start
     and the end, and saving a checkpoint and the final model.
   Target: truecost >= 0.95x the bare Trainer (median of per-repeat ratios).
2. Tuning: the same study (random sampler, same seed, so both draw the same learning rates) with a median pruner
   and with none. Compute = optimizer steps and CPU-seconds of all trials; the best loss of each study is shown
   beside it. Target: pruning saves >= 40% at an equal best loss.

Run: .venv/bin/python bench/train_vs_hf_trainer.py [--steps 80] [--repeats 5] [--trials 8] [--skip-tuning]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ARCH = {"model_type": "llama", "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 512,
        "tie_word_embeddings": True}


def throughput_config(workdir: Path, steps: int) -> Any:
    from truecost.train import make_config

    return make_config({
        "name": "bench", "output_dir": str(workdir / "runs" / "{name}"), "model": {"architecture": ARCH},
        "data": {"max_chars": 400_000}, "tokenizer": {"vocab_size": 2048}, "seq_len": 128, "micro_batch": 8,
        "max_steps": steps, "precision": "bf16", "optim": {"lr": 3e-3, "warmup_steps": 5, "min_lr_ratio": 0.0},
        "eval": {"every_steps": 10_000, "batches": 1}, "log_every": 10_000,
        "checkpoint": {"every_steps": None, "every_minutes": None},  # only the one at the end, as before
        "hardware": {"threads": 1}})  # one thread: stable on a shared machine; set for both runners


def run_truecost(config: Any) -> tuple[float, int]:
    """CPU-seconds of one truecost run and the tokens it trained on."""
    from truecost.train import train

    cpu0 = time.process_time()
    result = train(config)
    return time.process_time() - cpu0, result.tokens


def run_hf_trainer(config: Any, workdir: Path, same_job: bool) -> tuple[float, int]:
    """CPU-seconds of one plain `Trainer` run over the same packed blocks, same model and settings."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, PrinterCallback, Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging

    from truecost.train.data import prepare
    from truecost.train.trainer import Blocks

    hf_logging.set_verbosity_error()
    data = prepare(config)
    arch = dict(ARCH)
    model_type = arch.pop("model_type")
    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, vocab_size=len(data.tokenizer),
                                                                  **arch))
    job = ({"eval_strategy": "steps", "eval_steps": config.max_steps, "eval_on_start": True,
            "per_device_eval_batch_size": config.micro_batch, "save_strategy": "steps",
            "save_steps": config.max_steps} if same_job else {"eval_strategy": "no", "save_strategy": "no"})
    args = TrainingArguments(
        output_dir=str(workdir / "hf"), per_device_train_batch_size=config.micro_batch,
        max_steps=config.max_steps, learning_rate=config.optim.lr, weight_decay=config.optim.weight_decay,
        adam_beta1=config.optim.beta1, adam_beta2=config.optim.beta2, warmup_steps=config.optim.warmup_steps,
        lr_scheduler_type="cosine", max_grad_norm=config.optim.max_grad_norm, bf16=True, use_cpu=True,
        optim="adamw_torch_fused", logging_strategy="no", report_to=[], disable_tqdm=True,
        dataloader_num_workers=0, seed=config.seed, **job)
    cpu0 = time.process_time()
    trainer = Trainer(model=model, args=args, train_dataset=Blocks(data.train),
                      eval_dataset=Blocks(data.val[: config.micro_batch]))
    trainer.remove_callback(PrinterCallback)  # keeps this table readable; it prints one line per run
    trainer.train()
    if same_job:
        trainer.save_model(str(workdir / "hf" / "model"))
    return time.process_time() - cpu0, config.max_steps * config.micro_batch * config.seq_len


def throughput(workdir: Path, steps: int, repeats: int) -> dict[str, list[float]]:
    """Tokens per CPU-second of every repeat of each runner, interleaved to share the machine's mood."""
    import torch

    from truecost.train.data import prepare

    torch.set_num_threads(1)  # the same for the Trainer as for truecost (which sets it from the config)
    config = throughput_config(workdir, steps)
    prepare(config)  # every runner then reads the same cached blocks; tokenizer training is not timed
    warm_up = throughput_config(workdir, 3)  # first calls pay for kernel selection and lazy imports: not timed
    run_truecost(warm_up)
    run_hf_trainer(warm_up, workdir, same_job=True)
    rates: dict[str, list[float]] = {"truecost": [], "bare": [], "same_job": []}
    for repeat in range(repeats):
        for name in rates:
            if name == "truecost":
                cpu, tokens = run_truecost(config)
            else:
                cpu, tokens = run_hf_trainer(config, workdir, same_job=name == "same_job")
            rates[name].append(tokens / cpu)
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items()), file=sys.stderr,
              flush=True)  # progress, and a record of every repeat
    return rates


def tune_config(workdir: Path, pruner: str, trials: int, seed: int = 0) -> Any:
    from truecost.train import make_config

    return make_config({
        "name": f"study-{pruner}-{seed}", "output_dir": str(workdir / "runs" / "{name}"), "seed": seed,
        "model": {"architecture": {**ARCH, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
                                   "num_attention_heads": 2, "num_key_value_heads": 2}},
        "data": {"max_chars": 250_000}, "tokenizer": {"vocab_size": 512}, "seq_len": 64, "micro_batch": 8,
        "max_steps": 60, "precision": "fp32", "log_every": 10_000, "eval": {"every_steps": 10, "batches": 4},
        "optim": {"warmup_steps": 5}, "hardware": {"threads": 1},
        "checkpoint": {"every_steps": None, "every_minutes": None},
        "tune": {"trials": trials, "pruner": pruner, "sampler": "random", "startup_trials": 2,
                 "search_space": {"optim.lr": {"type": "float", "low": 1e-5, "high": 3e-2, "log": True}}}})


def tuning(workdir: Path, trials: int, seed: int = 0) -> dict[str, Any]:
    """The same study with the median pruner and with none; `seed` draws the learning rates (the same for both)."""
    from truecost.ledger import Ledger
    from truecost.train.tune import tune

    out = {}
    for pruner in ("none", "median"):
        ledger = Ledger(f"sqlite:///{workdir / f'ledger-{pruner}-{seed}.db'}")
        out[pruner] = tune(tune_config(workdir, pruner, trials, seed), ledger=ledger)
    return out


def _spread(values: list[float], digits: str = ",.0f") -> str:
    return f"{statistics.median(values):{digits}} ({min(values):{digits}}-{max(values):{digits}})"


def print_throughput(rates: dict[str, list[float]], steps: int) -> None:
    print(f"\n## Throughput: same tiny Llama, data, batch, optimizer, bf16, {steps} steps "
          f"(tokens per CPU-second; median (min-max) of {len(rates['truecost'])} interleaved repeats)")
    print("| runner | tokens per CPU-second | truecost / runner (median of per-repeat ratios, range) |")
    print("|---|---:|---:|")
    labels = {"truecost": "truecost train (Trainer + callbacks)", "bare": "HF Trainer, bare (headline peer)",
              "same_job": "HF Trainer, same job (eval start+end, checkpoint, model)"}
    for name, values in rates.items():
        ratios = [t / p for t, p in zip(rates["truecost"], values, strict=True)]
        ratio = "-" if name == "truecost" else _spread(ratios, ".2f") + "x"
        print(f"| {labels[name]} | {_spread(values)} | {ratio} |")
    print("target: truecost / bare >= 0.95x")


def print_tuning(runs: list[dict[str, Any]], trials: int) -> None:
    print(f"\n## Tuning: {trials} trials, same sampled learning rates, median pruner vs none; one pair of studies "
          f"per seed ({len(runs)})")
    print("| seed | study | steps run | trial CPU-seconds | cost USD | best eval loss | pruned trials |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    steps, cpu, deltas = [], [], []
    for seed, studies in enumerate(runs):
        unpruned, pruned = studies["none"], studies["median"]
        for name, result in (("no pruning", unpruned), ("median pruner", pruned)):
            count = sum(t.state == "pruned" for t in result.trials)
            print(f"| {seed} | {name} | {result.steps_run} | {result.total_cpu_seconds:.1f} | "
                  f"{result.total_cost_usd:.6f} | {result.best_value:.4f} | {count} |")
        steps.append(1 - pruned.steps_run / unpruned.steps_run)
        cpu.append(1 - pruned.total_cpu_seconds / unpruned.total_cpu_seconds)
        deltas.append(pruned.best_value - unpruned.best_value)
    print(f"saved by pruning, median (min-max) over seeds: steps {_spread([100 * v for v in steps], '.0f')}%, "
          f"CPU {_spread([100 * v for v in cpu], '.0f')}%; best-loss delta (pruned - unpruned) "
          f"{_spread(deltas, '+.4f')}  (target >= 40% at an equal best loss)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80, help="optimizer steps per throughput run")
    parser.add_argument("--repeats", type=int, default=5, help="throughput runs per runner (interleaved), >= 3")
    parser.add_argument("--trials", type=int, default=8, help="trials per tuning study")
    parser.add_argument("--skip-tuning", action="store_true", help="only the throughput comparison")
    parser.add_argument("--skip-throughput", action="store_true", help="only the tuning comparison")
    parser.add_argument("--tune-seeds", type=int, default=3, help="pairs of tuning studies, one per seed, >= 1")
    args = parser.parse_args()
    if args.repeats < 3:
        parser.error("--repeats: at least 3, so that a median and a range mean something")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        rates = None if args.skip_throughput else throughput(workdir, args.steps, args.repeats)
        studies = [] if args.skip_tuning else [tuning(workdir, args.trials, seed) for seed in range(args.tune_seeds)]
    if rates is not None:
        print_throughput(rates, args.steps)
    if studies:
        print_tuning(studies, args.trials)


if __name__ == "__main__":
    main()
