"""`truecost review`: performance, bias and security review of a model or endpoint, as a report and a CI gate."""

from __future__ import annotations

from pathlib import Path

import typer

from truecost.cli._common import JSON_OPTION, console, err_console, load_config, open_ledger, print_json

_EXIT_CODES = ("Exit codes: 0 review done (no --fail-on check failed); 1 a --fail-on check failed (a significant "
               "regression against --baseline, or a security finding with --fail-on findings); 2 a usage or input "
               "error; 3 the budget stopped the review before it finished while --fail-on was given.")


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def register(app: typer.Typer) -> None:
    """Add the review commands to the root app."""

    @app.command("review", help="Performance, bias and security review of a model or endpoint, as a report and "
                                f"CI gate.\n\n{_EXIT_CODES}")
    def review(
        target: str = typer.Option(..., "--target", "-t",
                                   help="hf:PATH (local Hugging Face model folder) or openai:URL#model "
                                        "(any OpenAI-compatible endpoint, e.g. openai:http://127.0.0.1:8000/v1#m)."),
        suites: str | None = typer.Option(None, "--suites", "-s",
                                          help="Comma-separated suites to run: performance, bias, security "
                                               "(default: all three, or truecost.toml \\[review] suites)."),
        data: list[str] = typer.Option(None, "--data", "-d",
                                       help="KIND=PATH (kinds: eval, crows_pairs, bbq, winobias, stereoset, xstest, "
                                            "toxigen, bold, cyberseceval, garak, bipia, tensor_trust; a file or a "
                                            "folder), a PATH whose kind is told from its content, or a folder with "
                                            "those sub-folders. Repeatable. Built-in probe sets fill the gaps."),
        out: Path = typer.Option(Path("review-out"), "--out", "-o", help="Folder for results.json and report.html."),
        max_usd: float | None = typer.Option(None, "--max-usd", help="Stop the review once it has cost this much."),
        max_requests: int | None = typer.Option(None, "--max-requests", help="Stop after this many model calls."),
        limit: int | None = typer.Option(None, "--limit", help="At most this many items per data set (seeded)."),
        baseline: Path | None = typer.Option(None, "--baseline",
                                             help="A previous results.json: mark significant regressions."),
        fail_on: list[str] = typer.Option(None, "--fail-on",
                                          help="Regressions that fail the run (exit 1): any, a suite (security), a "
                                               "metric name or glob (bias.bbq.*); 'findings' fails on any security "
                                               "finding. Comma-separated or repeated."),
        judge: str | None = typer.Option(None, "--judge", help="Judge model (hf:PATH or openai:URL#model) for what "
                                                                "the detectors cannot decide: jailbreak compliance, "
                                                                "CyberSecEval questions, BIPIA instructions."),
        judge_scope: str | None = typer.Option(None, "--judge-scope",
                                               help="unsure (default): ask the judge only where the cheap signals "
                                                    "are unsure; all: every answer that is not a refusal."),
        tasks: str | None = typer.Option(None, "--tasks", help="lm-evaluation-harness tasks to run on the local "
                                                               "model too (e.g. mmlu,hellaswag); needs lm-eval "
                                                               "(--lm-eval-python)."),
        tasks_path: Path | None = typer.Option(None, "--tasks-path", help="Folder of lm-eval task YAMLs (for "
                                                                          "local data files): lm-eval's "
                                                                          "--include_path."),
        lm_eval_python: str | None = typer.Option(None, "--lm-eval-python",
                                                  help="Interpreter of a venv with lm-eval installed."),
        max_new_tokens: int | None = typer.Option(None, "--max-new-tokens",
                                                  help="Longest answer per request, in tokens (default 64)."),
        seed: int = typer.Option(0, "--seed", help="Seed for sampling items, secrets and bootstrap resamples."),
        as_json: bool = JSON_OPTION,
    ) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from truecost.review import run_review

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=err_console, transient=True)
        task = progress.add_task("review", total=None)

        def on_progress(done: int, total: int, label: str) -> None:
            progress.update(task, completed=done, total=total, description=label)

        with progress:
            result = run_review(target, _split([suites]) if suites else None, data=data or None, out_dir=out,
                                max_requests=max_requests, max_usd=max_usd, baseline=baseline,
                                fail_on=_split(fail_on) if fail_on else None, limit=limit, seed=seed,
                                max_new_tokens=max_new_tokens, judge=judge, judge_scope=judge_scope,
                                ledger=open_ledger(), tasks=_split([tasks]) if tasks else None,
                                tasks_path=tasks_path, lm_eval_python=lm_eval_python,
                                config=load_config(), progress=on_progress,
                                on_start=lambda total: progress.update(task, total=total))
        if as_json:
            print_json(result.to_dict())
        else:
            _render(result)
        raise typer.Exit(result.exit_code)


def _render(result: object) -> None:
    from rich.markup import escape
    from rich.table import Table

    from truecost.review import ReviewResult

    assert isinstance(result, ReviewResult)
    regressions = {r["metric"]: r for r in result.regressions}
    table = Table(title=f"review of {result.target} ({result.status})")
    for column in ("metric", "value", "95% interval", "n", "vs baseline"):
        table.add_column(column, justify="right" if column in ("value", "n") else "left")
    for m in result.metrics:
        r = regressions.get(m.name)
        versus = "" if r is None else ("[red]worse[/]" if r["regression"] else "ok")
        interval = "-" if m.ci_low != m.ci_low else f"{m.ci_low:.4g} .. {m.ci_high:.4g}"
        table.add_row(m.name, f"{m.value:.4g}{(' ' + m.unit) if m.unit else ''}", interval, str(m.n), versus)
    console.print(table)
    for suite in result.suite_results.values():
        for line in suite.findings:
            console.print(f"[red]finding[/] {escape(line)}")
        for line in suite.skipped:
            console.print(f"[dim]skipped {escape(line)}[/]")
    if result.unjudged:
        console.print(f"[yellow]unjudged[/] {result.unjudged} security answers (--judge decides them)")
    skipped = result.load.get("skipped", {})
    for line in [*(f"{k}: skipped {n} malformed record(s)" for k, n in skipped.items()),
                 *(f"not used: {u}" for u in result.load.get("unused", []))]:
        console.print(f"[dim]data {escape(line)}[/]")
    cost = result.cost
    console.print(f"review cost ${cost['review_cost_usd']:.6f} for {cost['requests']} requests; "
                  f"report: {Path(result.out_dir or '.') / 'report.html'}; ledger run {result.run_id}")
    for line in result.failed_on:
        console.print(f"[bold red]fail[/] {line}")
