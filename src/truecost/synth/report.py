"""A synth run's report (what it cost, what each filter kept) and its output folder, written whole.

Output folder (the layout `truecost train` reads as a data source: it trains on `kept/`):
- `kept/examples.jsonl`: accepted examples, chat `messages` or `prompt`/`response`, each with `provenance`;
- `removed.jsonl`: every rejection with its filter, rule and evidence (the evaluation item and n-gram for
  decontamination, the kept document for dedup);
- `generations.jsonl`: every reply the generator and judge gave, with tokens, attempts and errors;
- `report.json`: this module's report; `_COMPLETE`: written last, by `truecost.outputs`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from truecost.errors import UserError
from truecost.outputs import COMPLETE_MARKER, atomic_output_dir
from truecost.synth.budget import Budget, Clock
from truecost.synth.decontam import NgramIndex
from truecost.synth.files import Row
from truecost.synth.filters import Example, FilterResult
from truecost.synth.generators import Generator
from truecost.synth.settings import SynthSettings
from truecost.synth.tasks import Generated
from truecost.synth.templates import Template

COMPUTE_BASIS = ("measured CPU-seconds (and GPU-hours) of this run, priced at truecost.toml [hardware] "
                 "(default: assumed AWS c7i on-demand core-hour)")


def _requests(generated: Generated, budget: Budget) -> dict[str, int]:
    replies = generated.completions
    return {"sent": budget.requests, "answered": sum(1 for c in replies if c.error is None),
            "failed": sum(1 for c in replies if c.error not in (None, "budget")),
            "not_sent_budget": sum(1 for c in replies if c.error == "budget"),
            "retried": sum(max(0, c.attempts - 1) for c in replies)}


def _cost(generator: Generator, judge: Generator | None, budget: Budget, clock: Clock, accepted: int
          ) -> dict[str, Any]:
    compute = clock.compute_usd()
    total = budget.api_usd + compute
    bases = {g.model_name: getattr(g, "price_basis", "local: compute only") for g in (generator, judge) if g}
    # Dollars unrounded: a cheap example costs a few millionths of a cent, which rounding would erase.
    return {"api_usd": budget.api_usd, "compute_usd": compute, "total_usd": total,
            "cost_per_accepted_usd": total / accepted if accepted else None,
            "api_price_basis": bases, "compute_basis": COMPUTE_BASIS,
            "cpu_seconds": round(clock.cpu_seconds(), 3), "gpu_hours": round(clock.gpu_hours(), 6),
            "wall_seconds": round(clock.wall_seconds(), 3)}


def _decontamination(index: NgramIndex | None, names: list[str], filtered: FilterResult) -> dict[str, Any] | None:
    if index is None:
        return None
    dropped = {name: 0 for name in names}
    for rejection in filtered.rejections:
        if rejection.filter == "decontaminate":
            dropped[str(rejection.detail["eval_set"])] += 1
    return {"n": index.n, "min_n": index.min_n,
            "sets": {name: {"items_indexed": index.items.get(name, 0), "items_too_short": index.unchecked.get(name, 0),
                            "examples_dropped": dropped[name]} for name in names}}


def build_report(settings: SynthSettings, template: Template, seeds: list[Row], generator: Generator,
                 judge: Generator | None, generated: Generated, filtered: FilterResult, budget: Budget, clock: Clock,
                 eval_index: NgramIndex | None, eval_names: list[str], run_id: str | None) -> dict[str, Any]:
    """The run's report as plain data (also what `--json` prints)."""
    accepted = len(filtered.kept)
    replies = generated.parse.seen
    return {
        "run_id": run_id, "task": settings.task,
        "generator": {"spec": settings.generator, "model": generator.model_name, "kind": generator.kind,
                      "device": generator.device},
        "judge": None if judge is None else {"spec": settings.judge, "model": judge.model_name,
                                             "threshold": settings.judge_threshold},
        "template": {"name": template.name, "sha256": template.sha256, "source": template.source},
        "seeds": {"sources": settings.seeds, "used": len(seeds)},
        "requests": _requests(generated, budget),
        "tokens": {"in": sum(c.prompt_tokens for c in generated.completions),
                   "out": sum(c.completion_tokens for c in generated.completions)},
        "cost": _cost(generator, judge, budget, clock, accepted),
        "filters": [generated.parse.summary()] + [c.summary() for c in filtered.counts],
        "generated": len(generated.examples), "accepted": accepted,
        "acceptance_rate": round(accepted / replies, 4) if replies else None,
        "decontamination": _decontamination(eval_index, eval_names, filtered),
        "budget": {"max_requests": settings.max_requests, "max_usd": settings.max_usd,
                   "stopped_by": budget.stop_reason},
    }


def example_row(example: Example, output_format: str) -> dict[str, Any]:
    """One accepted example in a shape `truecost train` reads, with its provenance."""
    provenance = dict(example.provenance)
    if example.judge_score is not None:
        provenance["judge_score"] = example.judge_score
    if output_format == "chat":
        return {"id": example.id, "messages": [{"role": "user", "content": example.prompt},
                                               {"role": "assistant", "content": example.response}],
                "provenance": provenance}
    return {"id": example.id, "prompt": example.prompt, "response": example.response, "provenance": provenance}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def check_output_dir(out_dir: Path) -> None:
    """Refuse an output folder that cannot be written before any request is paid for: a file in its place, or a
    parent folder that cannot be created or written to; and refuse to replace a folder that an earlier synth run did
    not write (the seeds' own folder, the working directory, a project): replacing deletes what it held."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"output {out_dir} exists and is not a folder")
    if not out_dir.name or out_dir.name == ".." or out_dir.resolve() in (Path.cwd(), *Path.cwd().parents):
        raise UserError(f"output {out_dir} is the working folder or above it; name a new folder, e.g. synth-out")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not _written_by_synth(out_dir):
        raise UserError(f"output {out_dir} already holds files that truecost synth did not write, and the output "
                        "replaces the whole folder; name a new or empty folder")
    probe = out_dir.with_name(f".{out_dir.name}.probe-{os.getpid()}")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise UserError(f"output {out_dir}: cannot write there ({exc.strerror})") from exc


def _written_by_synth(folder: Path) -> bool:
    """Whether `folder` is a finished synth output (its completion marker says kind synth): safe to replace."""
    try:
        marker = json.loads((folder / COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("kind") == "synth"


def write_outputs(out_dir: Path, output_format: str, filtered: FilterResult, generated: Generated,
                  report: dict[str, Any]) -> dict[str, Any]:
    """Write the folder (see the module docstring) in a temporary sibling, renamed into place when whole."""
    output = {"dir": str(out_dir), "format": output_format,
              "files": ["kept/examples.jsonl", "removed.jsonl", "generations.jsonl", "report.json"]}
    try:
        return _write_folder(out_dir, output, filtered, generated, report)
    except OSError as exc:  # the disk filled or the folder went away during the run
        raise UserError(f"output {out_dir}: cannot write it ({exc.strerror})") from exc


def _write_folder(out_dir: Path, output: dict[str, Any], filtered: FilterResult, generated: Generated,
                  report: dict[str, Any]) -> dict[str, Any]:
    output_format = output["format"]
    with atomic_output_dir(out_dir, run_id=report.get("run_id"), kind="synth") as tmp:
        (tmp / "kept").mkdir()
        _write_jsonl(tmp / "kept" / "examples.jsonl", [example_row(e, output_format) for e in filtered.kept])
        rejections = generated.rejections + filtered.rejections
        _write_jsonl(tmp / "removed.jsonl", [r.to_dict() for r in rejections])
        _write_jsonl(tmp / "generations.jsonl", [
            {"key": c.key, "text": c.text, "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
             "api_usd": c.api_usd, "attempts": c.attempts, "error": c.error} for c in generated.completions])
        (tmp / "report.json").write_text(json.dumps({**report, "output": output}, indent=2) + "\n",
                                         encoding="utf-8")
    return output
