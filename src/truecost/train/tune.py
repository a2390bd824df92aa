"""`truecost tune`: an Optuna study of training runs, pruned on eval loss, every trial metered in the ledger.

The study lives in the ledger's own database (SQLite or PostgreSQL), so workers started on several machines with
the same config and ledger URL share one study. Each trial is a ledger run of kind `tune` whose parent is the
study's run; the report says what pruning saved against running every trial to the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from truecost.errors import MissingExtra, UserError
from truecost.train.config import SearchParam, TrainConfig, with_value

if TYPE_CHECKING:
    from truecost.config import Config
    from truecost.ledger import Ledger


@dataclass
class TrialSummary:
    """One trial: its parameters, how it ended and what it cost."""

    number: int
    params: dict[str, Any]
    state: str  # complete, pruned or fail
    best_eval_loss: float | None
    steps: int
    max_steps: int
    cost_usd: float
    cpu_seconds: float
    run_id: str | None


@dataclass
class TuneResult:
    """The study's outcome and its bill."""

    study_name: str
    run_id: str | None
    trials: list[TrialSummary]
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any]
    total_cost_usd: float
    total_cpu_seconds: float
    steps_run: int
    steps_if_unpruned: int
    compute_saved_fraction: float  # share of optimizer steps pruning did not run
    cost_saved_usd: float  # those steps at this study's measured dollars per step
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def savings(trials: list[TrialSummary]) -> tuple[int, int, float, float]:
    """(steps run, steps had no trial been pruned, fraction saved, dollars saved at the measured cost per step)."""
    run = sum(t.steps for t in trials)
    full = run + sum(t.max_steps - t.steps for t in trials if t.state == "pruned")
    cost = sum(t.cost_usd for t in trials)
    per_step = cost / run if run else 0.0
    fraction = 1.0 - run / full if full else 0.0
    return run, full, fraction, (full - run) * per_step


def _suggest(trial: Any, name: str, param: SearchParam) -> Any:
    if param.type == "categorical":
        return trial.suggest_categorical(name, param.choices)
    assert param.low is not None and param.high is not None
    if param.type == "int":
        return trial.suggest_int(name, int(param.low), int(param.high), log=param.log)
    return trial.suggest_float(name, param.low, param.high, log=param.log)


def check_search_space(config: TrainConfig) -> None:
    """Every searched field exists and accepts each end of its range (or each choice), checked before the study
    is created: a typo or an out-of-range bound otherwise failed a trial, stored in the shared study, mid-run."""
    for name, param in config.tune.search_space.items():
        values = param.choices if param.type == "categorical" else [param.low, param.high]
        for value in values or []:
            if param.type == "int" and value is not None:
                value = int(value)
            try:
                with_value(config, name, value)
            except UserError as exc:
                raise UserError(f"tune.search_space {name} = {value!r}: {exc}") from exc


def _pruner(config: TrainConfig) -> Any:
    import optuna

    kind = config.tune.pruner
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=config.tune.startup_trials, n_warmup_steps=0)
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=config.eval.every_steps, reduction_factor=3)
    return optuna.pruners.NopPruner()


def _sampler(config: TrainConfig, seed: int) -> Any:
    import optuna

    if config.tune.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, config.tune.startup_trials))


def tune(config: TrainConfig, *, trials: int | None = None, ledger: Ledger, project: Config | None = None,
         log: Callable[[str], None] | None = None) -> TuneResult:
    """Run `trials` trials (default: `tune.trials`) of the config's search space in the ledger-stored study."""
    try:
        import optuna
    except ImportError as exc:
        raise MissingExtra("optuna", "train", "tuning") from exc
    from truecost.train.runner import train

    check_search_space(config)
    say = log or (lambda _msg: None)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_name = config.tune.study_name or config.name
    count = trials or config.tune.trials
    storage = optuna.storages.RDBStorage(ledger.url, engine_kwargs={"pool_pre_ping": True})
    study = optuna.create_study(study_name=study_name, storage=storage, direction="minimize",
                                pruner=_pruner(config), load_if_exists=True)
    # A worker joining a shared study draws its own random stream, so two workers do not repeat each other.
    study.sampler = _sampler(config, config.seed + len(study.trials))
    summaries: list[TrialSummary] = []

    with ledger.run("tune", study_name, params={"config": config.model_dump(mode="json"), "trials": count,
                                                "pruner": config.tune.pruner, "sampler": config.tune.sampler},
                    prices=(project.compute_prices() if project is not None else None)) as study_run:

        def objective(trial: Any) -> float:
            values = {name: _suggest(trial, name, param) for name, param in config.tune.search_space.items()}
            trial_config = config
            for name, value in values.items():
                trial_config = with_value(trial_config, name, value)
            trial_config = with_value(trial_config, "name", f"{study_name}-trial{trial.number}")
            trial_config = with_value(trial_config, "output_dir",
                                      str(config.run_dir / "trials" / f"trial{trial.number}"))

            def on_eval(step: int, loss: float) -> bool:
                trial.report(loss, step)
                return bool(trial.should_prune())

            result = train(trial_config, ledger=ledger, project=project, on_eval=on_eval, kind="tune",
                           parent_id=study_run.id)
            state = "pruned" if result.stopped_by == "pruned" else "complete"
            summaries.append(TrialSummary(number=trial.number, params=values, state=state,
                                          best_eval_loss=result.best_eval_loss, steps=result.steps,
                                          max_steps=trial_config.max_steps, cost_usd=result.cost_usd,
                                          cpu_seconds=result.cpu_seconds, run_id=result.run_id))
            for key, value in (("steps", result.steps), ("cost_usd", result.cost_usd), ("run_id", result.run_id)):
                trial.set_user_attr(key, value)
            say(f"trial {trial.number}: {state} at step {result.steps}, best eval loss "
                f"{result.best_eval_loss:.4f}, ${result.cost_usd:.6f}  {values}")
            if state == "pruned":
                raise optuna.TrialPruned()
            return result.best_eval_loss

        study.optimize(objective, n_trials=count, catch=())
        run, full, fraction, saved_usd = savings(summaries)
        total_cost = sum(t.cost_usd for t in summaries)
        total_cpu = sum(t.cpu_seconds for t in summaries)
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = min(completed, key=lambda t: float(t.value or 0.0)) if completed else None
        # The trials are their own ledger runs; this record keeps only the study's overhead, so totals add up.
        wall, cpu = study_run.elapsed()
        from truecost.estimate.pricing import compute_cost_usd, compute_energy_kwh

        prices = study_run.prices
        study_run.cost_usd = max(0.0, compute_cost_usd(cpu - total_cpu, 0.0, prices))
        study_run.energy_kwh = max(0.0, compute_energy_kwh(cpu - total_cpu, 0.0, prices))
        result = TuneResult(
            study_name=study_name, run_id=study_run.id, trials=summaries,
            best_trial=best.number if best else None, best_value=best.value if best else None,
            best_params=dict(best.params) if best else {}, total_cost_usd=total_cost, total_cpu_seconds=total_cpu,
            steps_run=run, steps_if_unpruned=full, compute_saved_fraction=fraction, cost_saved_usd=saved_usd,
            extra={"trials_in_study": len(study.trials), "wall_seconds": wall})
        study_run.tokens = 0
        study_run.results.update({k: v for k, v in result.to_dict().items() if k != "trials"})
        study_run.results["trial_run_ids"] = [t.run_id for t in summaries]
    return result
