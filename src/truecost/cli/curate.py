"""`truecost curate`: clean, PII-scrub, filter and de-duplicate training text, and say what it saved."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from truecost.cli._common import JSON_OPTION, console, err_console, load_config, open_ledger, print_json
from truecost.errors import UserError

if TYPE_CHECKING:
    from truecost.config import Config
    from truecost.curate.settings import CurateSettings


def _settings(cfg: Config, steps: str | None, recipe: Path | None, text_field: str | None, id_field: str | None,
              dedup_index: Path | None) -> CurateSettings:
    """truecost.toml [curate], then the recipe file, then command-line options (each overrides the one before)."""
    from truecost.curate.settings import ALL_STEPS, load_recipe, settings_from_dict

    base = dict(cfg.curate)
    if steps and steps.lower().endswith((".toml", ".json")):
        recipe, steps = Path(steps), None
    settings = load_recipe(recipe, base) if recipe else settings_from_dict(base, "truecost.toml [curate]")
    updates: dict[str, Any] = {}
    if steps:
        names = [s.strip().lower() for s in steps.split(",") if s.strip()]
        unknown = [n for n in names if n not in ALL_STEPS]
        if unknown or not names:
            raise UserError(f"--steps: unknown step {', '.join(unknown) or '(none given)'}; "
                            f"choose from {', '.join(ALL_STEPS)}")
        updates["steps"] = names
    if text_field:
        updates["text_field"] = text_field
    if id_field:
        updates["id_field"] = id_field
    if dedup_index:
        updates["dedup_index_dir"] = dedup_index
    return settings.model_copy(update=updates) if updates else settings


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False)


def _render(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="truecost curate" + (" (dry run: sample)" if report["dry_run"] else ""))
    for col in ("step", "docs in", "docs out", "removed", "modified", "tokens removed", "CPU s", "top reasons"):
        table.add_column(col, justify="left" if col in ("step", "top reasons") else "right")
    for st in report["steps"]:
        reasons = sorted(st["removed_by_rule"].items(), key=lambda kv: -kv[1])[:3]
        table.add_row(st["step"], f"{st['docs_in']:,}", f"{st['docs_out']:,}", f"{st['docs_removed']:,}",
                      f"{st['docs_modified']:,}", f"{st['tokens_removed']:,}", f"{st['cpu_seconds']:.2f}",
                      st.get("skipped") or ", ".join(f"{k} {v}" for k, v in reasons))
    console.print(table)
    bad = report["input"]["bad_input"]
    if bad:
        _say("bad input: " + ", ".join(f"{k} {v}" for k, v in bad.items()))
    t, c, s = report["totals"], report["cost"], report["savings"]
    _say(f"kept {t['docs_out']:,} of {t['docs_in']:,} documents; removed {t['tokens_removed']:,} of "
         f"{t['tokens_in']:,} tokens ({t['tokens_removed_fraction']:.1%}).")
    _say(f"pipeline: {c['cpu_seconds']:.2f} CPU-s (${c['cpu_cost_usd']:.6f}), "
         f"{c['mb_per_cpu_second']} MB/CPU-s.")
    _say(f"saved: ${s['usd_saved_per_training_run']:,.2f} per training run of {s['target']['model']} "
         f"(${s['usd_saved_per_year']:,.2f}/year; {s['target']['source']}).")
    est = report.get("estimate_full_run")
    if est:
        _say(f"full run estimate: {est['total_documents']:,} docs, ~{est['tokens_removed']:,} tokens "
             f"removed, ~{est['cpu_seconds']:.0f} CPU-s (~{est['wall_seconds']:.0f} s wall), "
             f"${est['cpu_cost_usd']:.4f} of CPU. {est['caveat']}.")
    if report["outputs"]:
        _say(f"outputs: {report['outputs']['report_json'].rsplit('/', 1)[0]}")
    if report.get("nodes", 1) > 1:
        _say(f"ran on {report['nodes']} Ray nodes.")


def register(app: typer.Typer) -> None:
    """Add the curate command to the root app."""

    @app.command("curate")
    def curate(
        inputs: list[str] = typer.Argument(..., help="JSONL (.jsonl, .gz, .zst), Parquet files, folders, globs "
                                                     "or fsspec URLs (s3://, gs://, hf://).", show_default=False),
        output: str | None = typer.Option(None, "--output", "-o", help="Output folder or URL (kept/ shards, "
                                          "removed.jsonl, duplicates.jsonl, manifest.json, report.json/html); a "
                                          "killed run restarted with the same command resumes."),
        steps: str | None = typer.Option(None, "--steps", help="Steps in order, comma-separated, from normalize, "
                                         "pii, language, quality, exact, near (default: all); or a recipe file."),
        recipe: Path | None = typer.Option(None, "--recipe", help="Recipe file (TOML/JSON, keys as in the curate "
                                           "section of truecost.toml): steps and their thresholds."),
        text_field: str | None = typer.Option(None, "--text-field", help="Field holding the text (default text)."),
        id_field: str | None = typer.Option(None, "--id-field", help="Field holding the id (default id); kept in "
                                            "every output."),
        engine: str = typer.Option("local", "--engine", help="local (this machine) or ray (every phase on a Ray "
                                   "cluster, joined through RAY_ADDRESS when set; same output)."),
        workers: int = typer.Option(1, "--workers", min=1, help="Processes for the per-document steps."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Run on a sample and estimate the full run: "
                                     "removal rates, tokens saved, time and cost. Writes only the report."),
        sample: float = typer.Option(0.01, "--sample", min=0.0, max=1.0, help="Fraction of documents for "
                                     "--dry-run."),
        dedup_index: Path | None = typer.Option(None, "--dedup-index", help="Folder of a near-dedup index: "
                                                "documents close to earlier datasets are removed; it is extended."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Clean, PII-scrub, filter and de-duplicate training text; explain every removal and price what it saved.

        Example: truecost curate data.jsonl --output curated/ --steps normalize,quality,exact,near
        """
        from truecost.curate.pipeline import run_curate

        if engine not in ("local", "ray"):
            raise UserError(f"--engine must be local or ray (got {engine!r})")
        if output is None and not dry_run:
            raise UserError("--output DIR is required (or use --dry-run)")
        if dry_run and sample <= 0:
            raise UserError("--sample must be above 0 for --dry-run")
        cfg = load_config()
        settings = _settings(cfg, steps, recipe, text_field, id_field, dedup_index)
        progress_ctx, progress_fn = _progress(quiet)
        with progress_ctx:
            run = run_curate(inputs, settings, output_dir=output, engine=engine,  # type: ignore[arg-type]
                             workers=workers, dry_run=dry_run, sample=sample, progress=progress_fn,
                             config=cfg, ledger=open_ledger())
        report = run.report() if output is None else _read_report(run.outputs["report_json"])
        report["ledger_run_id"] = run.ledger_run_id
        _warn_about_input(report)
        if as_json:
            print_json(report)
        else:
            _render(report)


def _warn_about_input(report: dict[str, Any]) -> None:
    """Nothing usable, or nothing left, is worth a line on stderr: a run that keeps 0 of 0 is rarely intended; so
    is a file read only part-way (a truncated download), whose later documents are missing from every output."""
    totals, bad = report["totals"], report["input"]["bad_input"]
    if bad.get("unreadable_file"):
        err_console.print(f"warning: {bad['unreadable_file']} input file(s) could not be read to the end (damaged or "
                          "truncated); their documents after the damage are missing (see bad_input.jsonl, "
                          "reason unreadable_file)", markup=False, highlight=False, soft_wrap=True)
    if totals["docs_in"] == 0:
        err_console.print(f"warning: no usable document in the input ({sum(bad.values())} bad records: "
                          f"{', '.join(f'{k} {v}' for k, v in bad.items())}; see bad_input.jsonl)",
                          markup=False, highlight=False)
    elif totals["docs_out"] == 0:
        err_console.print(f"warning: every one of the {totals['docs_in']:,} documents was removed "
                          "(see removed.jsonl)", markup=False, highlight=False)


def _read_report(url: str) -> dict[str, Any]:
    import json

    from truecost.curate.sources import open_file

    with open_file(url, "rb") as fh:
        result: dict[str, Any] = json.loads(fh.read())
    return result


def _progress(quiet: bool) -> tuple[Any, Any]:
    """A Rich progress bar on stderr (stdout stays clean for --json), and the callback the pipeline calls."""
    if quiet or not err_console.is_terminal:  # off a terminal the bar draws nothing but left a blank line
        return contextlib.nullcontext(), None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err_console, transient=True)
    tasks: dict[str, Any] = {}

    def advance(label: str, docs: int, total: int) -> None:
        if label not in tasks:
            tasks[label] = bar.add_task(label, total=total)
        bar.advance(tasks[label], docs)

    return bar, advance
