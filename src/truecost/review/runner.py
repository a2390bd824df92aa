"""run_review: load the data, open the target, run the suites inside one metered ledger run, compare with a
baseline, and write results.json and report.html."""

from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from truecost.errors import UserError
from truecost.review import bias, security
from truecost.review.baseline import failed_checks, find_regressions, load_baseline
from truecost.review.files import LoadLog
from truecost.review.garak import load_garak, load_lexicon
from truecost.review.injection import load_bipia, load_tensor_trust
from truecost.review.kinds import detect_file, detect_folder, sample_layout
from truecost.review.performance import load_eval_set, run_performance
from truecost.review.results import SCHEMA, Metric, SuiteResult
from truecost.review.security_run import run_security
from truecost.review.session import Budget, ProgressHook, Session
from truecost.review.targets import Target, parse_target

if TYPE_CHECKING:
    from truecost.config import Config
    from truecost.ledger import Ledger

SUITES = ("performance", "bias", "security")
DATA_KINDS = {"eval": "performance", "crows_pairs": "bias", "bbq": "bias", "winobias": "bias",
              "stereoset": "bias", "xstest": "bias", "toxigen": "bias", "bold": "bias",
              "cyberseceval": "security", "garak": "security", "bipia": "security", "tensor_trust": "security"}
BUILTIN = {"eval": "eval.jsonl", "crows_pairs": "crows_pairs.csv", "bbq": "bbq.jsonl", "winobias": "winobias",
           "stereoset": "stereoset.json", "xstest": "xstest.csv"}


class ReviewSettings(BaseModel):
    """The `[review]` section of truecost.toml: defaults for arguments the caller leaves out."""

    model_config = ConfigDict(extra="forbid")
    suites: list[str] | None = None
    max_usd: float | None = Field(default=None, gt=0)
    max_requests: int | None = Field(default=None, ge=1)
    limit: int | None = Field(default=None, ge=1)
    max_new_tokens: int = Field(default=64, ge=1)
    fail_on: list[str] = Field(default_factory=list)
    judge: str | None = None
    judge_scope: Literal["unsure", "all"] = "unsure"
    tasks: list[str] = Field(default_factory=list)  # lm-eval tasks run beside the suites (optional backend)
    tasks_path: str | None = None
    lm_eval_python: str | None = None


def review_settings(config: Config) -> ReviewSettings:
    """Validate `[review]` from the project config; a typo is one clear line."""
    from truecost.config import describe_validation_error

    try:
        return ReviewSettings.model_validate(dict(config.review or {}))
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, "truecost.toml [review]")) from None


@dataclass
class ReviewResult:
    """Everything a review found and spent; `to_dict()` is exactly what results.json holds."""

    target: str
    model: str
    suites: list[str]
    status: str  # "completed" or "stopped" (budget)
    metrics: list[Metric]
    suite_results: dict[str, SuiteResult]
    cost: dict[str, Any]
    started_at: str
    stop_reason: str | None = None
    regressions: list[dict[str, Any]] = field(default_factory=list)
    failed_on: list[str] = field(default_factory=list)
    fail_on: list[str] = field(default_factory=list)
    run_id: str | None = None
    data: dict[str, str] = field(default_factory=dict)
    out_dir: str | None = None
    load: dict[str, Any] = field(default_factory=dict)  # malformed records skipped and files not used, per set
    judge: str | None = None  # the judge model's spec, when one was given

    def metric(self, name: str) -> Metric:
        """One metric by name (KeyError when the review did not produce it)."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def exit_code(self) -> int:
        """0 fine; 1 a --fail-on check failed; 3 the budget stopped the review while --fail-on was set."""
        if self.failed_on:
            return 1
        if self.status == "stopped" and self.fail_on:
            return 3
        return 0

    @property
    def unjudged(self) -> int:
        """Security answers nothing could judge (reported beside the rates, never dropped silently)."""
        security = self.suite_results.get("security")
        return int(security.details.get("unjudged", 0)) if security else 0

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "target": self.target, "model": self.model, "suites": self.suites,
                "status": self.status, "stop_reason": self.stop_reason, "started_at": self.started_at,
                "run_id": self.run_id, "data": self.data, "cost": self.cost,
                "metrics": [m.to_dict() for m in self.metrics],
                "suite_results": {k: v.to_dict() for k, v in self.suite_results.items()},
                "regressions": self.regressions, "fail_on": self.fail_on, "failed_on": self.failed_on,
                "exit_code": self.exit_code, "out_dir": self.out_dir, "load": self.load, "judge": self.judge,
                "unjudged": self.unjudged}


def _builtin_path(name: str) -> Path:
    return Path(str(resources.files("truecost.review").joinpath(f"probes/{name}")))


def _entries(data: Mapping[str, str | Path] | Iterable[str] | str | Path) -> list[tuple[str | None, Path]]:
    if isinstance(data, Mapping):
        return [(k, Path(v)) for k, v in data.items()]
    if isinstance(data, str | Path):
        return [(None, Path(data))]
    entries: list[tuple[str | None, Path]] = []
    for item in data:
        head, sep, tail = str(item).partition("=")
        entries.append((head.strip(), Path(tail)) if sep and not Path(str(item)).exists() else (None, Path(item)))
    return entries


def resolve_data(data: Mapping[str, str | Path] | Iterable[str] | str | Path | None) -> dict[str, Path]:
    """User data as {kind: path}. Accepts {kind: path}, ["kind=path", ...], a file or folder of one data set (its
    kind told from its names and first record), or a folder laid out like review_sample/ (one sub-folder per kind)."""
    if data is None:
        return {}
    out: dict[str, Path] = {}
    for named, where_ in _entries(data):
        if not where_.exists():
            raise UserError(f"data path {where_} does not exist")
        if named is not None:
            if named not in DATA_KINDS:
                raise UserError(f"unknown data kind {named!r}; expected one of {', '.join(DATA_KINDS)}")
            out[named] = where_
            continue
        layout = sample_layout(where_) if where_.is_dir() else {}
        kind = None if layout else (detect_folder(where_) if where_.is_dir() else detect_file(where_))
        if layout:
            out.update(layout)
        elif kind == "winobias" and where_.is_file():
            out[kind] = where_.parent  # WinoBias needs the occupation lists beside the file
        elif kind is not None:
            out[kind] = where_
        else:
            raise UserError(f"cannot tell which data set {where_} holds: name its kind, e.g. --data bbq={where_} "
                            f"(kinds: {', '.join(DATA_KINDS)})")
    return out


def _sample(items: list[Any], limit: int | None, seed: int) -> list[Any]:
    """At most `limit` items, a seeded random subset kept in file order."""
    if limit is None or len(items) <= limit:
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]


@dataclass
class _Plan:
    eval_items: list[Any] = field(default_factory=list)
    bias_sets: dict[str, list[Any]] = field(default_factory=dict)
    security_families: dict[str, list[security.Probe]] = field(default_factory=dict)
    secrets: security.Secrets | None = None
    sources: dict[str, str] = field(default_factory=dict)
    log: LoadLog = field(default_factory=LoadLog)
    lexicon: set[str] = field(default_factory=set)

    def count(self) -> int:
        return (len(self.eval_items) + sum(len(v) for v in self.bias_sets.values())
                + sum(len(v) for v in self.security_families.values()))


def _plan_bias(plan: _Plan, paths: dict[str, Path], limit: int | None, seed: int) -> None:
    given = [k for k in bias.LOADERS if k in paths]
    for kind in given or [k for k in bias.LOADERS if k not in bias.BUILTIN_ONLY_WHEN_GIVEN]:
        path = paths.get(kind) or _builtin_path(BUILTIN[kind])
        plan.sources[kind] = str(path) if kind in paths else "built-in"
        plan.bias_sets[kind] = _sample(bias.LOADERS[kind](path, plan.log), limit, seed)


def _plan_security(plan: _Plan, paths: dict[str, Path], limit: int | None, seed: int, model_name: str) -> None:
    data = security.builtin_probe_data()
    plan.secrets = security.make_secrets(seed, data)
    plan.security_families = {k: _sample(v, limit, seed)
                              for k, v in security.builtin_probes(plan.secrets, data).items()}
    plan.sources["security"] = "built-in"
    loaders: dict[str, Callable[[Path], dict[str, list[security.Probe]]]] = {
        # --limit counts CyberSecEval's items as one set (as before), garak's and the others' per family.
        "cyberseceval": lambda p: _by_family(_sample(security.load_cyberseceval(p, plan.log), limit, seed)),
        "garak": lambda p: load_garak(p, plan.secrets or security.Secrets("", "", ""), model_name, plan.log),
        "bipia": lambda p: load_bipia(p, plan.log), "tensor_trust": lambda p: load_tensor_trust(p, plan.log)}
    for kind, load in loaders.items():
        if kind in paths:
            plan.sources[kind] = str(paths[kind])
            for family, probes in load(paths[kind]).items():
                plan.security_families.setdefault(family, []).extend(_sample(probes, limit, seed))
    if "garak" in paths and paths["garak"].is_dir():
        plan.lexicon = load_lexicon(paths["garak"])
    if "cyberseceval" in paths and paths["cyberseceval"].is_dir():
        plan.log.unused += [f"{f} (CyberSecEval: only the prompt-injection files are scored)"
                            for f in sorted(paths["cyberseceval"].glob("*.json"))
                            if not f.name.startswith("prompt_injection")]


def _by_family(probes: list[security.Probe]) -> dict[str, list[security.Probe]]:
    out: dict[str, list[security.Probe]] = {}
    for probe in probes:
        out.setdefault(probe.family, []).append(probe)
    return out


def _plan(suites: list[str], paths: dict[str, Path], limit: int | None, seed: int, model_name: str) -> _Plan:
    """Load (and validate) every data file before the target is opened, so bad files fail fast; malformed records
    of public sets are skipped and counted in `plan.log`."""
    plan = _Plan()
    ignored = [k for k in paths if DATA_KINDS[k] not in suites]
    if ignored:
        raise UserError(f"--data {', '.join(ignored)} belongs to suite(s) "
                        f"{', '.join(sorted({DATA_KINDS[k] for k in ignored}))}, which this review does not run "
                        f"(--suites {','.join(suites)})")
    if "performance" in suites:
        path = paths.get("eval") or _builtin_path(BUILTIN["eval"])
        plan.sources["eval"] = str(path) if "eval" in paths else "built-in"
        plan.eval_items = _sample(load_eval_set(path), limit, seed)
    if "bias" in suites:
        _plan_bias(plan, paths, limit, seed)
    if "security" in suites:
        _plan_security(plan, paths, limit, seed, model_name)
    return plan


@dataclass
class _Options:
    """run_review's arguments after truecost.toml's [review] defaults are applied and checked."""

    suites: list[str]
    max_requests: int | None
    max_usd: float | None
    limit: int | None
    max_new_tokens: int
    fail_on: list[str]
    judge: str | Target | None
    judge_scope: str
    tasks: list[str] = field(default_factory=list)
    tasks_path: Path | None = None
    lm_eval_python: str | None = None


def _options(settings: ReviewSettings, suites: Iterable[str] | None, max_requests: int | None,
             max_usd: float | None, limit: int | None, max_new_tokens: int | None, fail_on: Iterable[str] | None,
             judge: str | Target | None, judge_scope: str | None) -> _Options:
    chosen = [s.strip() for s in (suites if suites is not None else (settings.suites or SUITES)) if s.strip()]
    unknown = [s for s in chosen if s not in SUITES]
    if unknown or not chosen:
        raise UserError(f"unknown suite(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(SUITES)}")
    opts = _Options(chosen, max_requests if max_requests is not None else settings.max_requests,
                    max_usd if max_usd is not None else settings.max_usd,
                    limit if limit is not None else settings.limit,
                    max_new_tokens if max_new_tokens is not None else settings.max_new_tokens,
                    [s.strip() for s in (fail_on if fail_on is not None else settings.fail_on) if s.strip()],
                    judge if judge is not None else settings.judge, judge_scope or settings.judge_scope)
    if opts.max_requests is not None and opts.max_requests < 1:
        raise UserError("max_requests must be at least 1")
    if opts.max_usd is not None and opts.max_usd <= 0:
        raise UserError("max_usd must be positive")
    if opts.judge_scope not in ("unsure", "all"):
        raise UserError(f"judge scope {opts.judge_scope!r}: use unsure or all")
    for selector in opts.fail_on:
        if selector not in (*SUITES, "any", "all", "*", "findings") and not any(c in selector for c in ".*?["):
            raise UserError(f"--fail-on {selector!r}: use any, findings, a suite ({', '.join(SUITES)}), "
                            "a metric name or a glob such as bias.bbq.*")
    return opts


def _run_lm_eval(session: Session, opts: _Options) -> tuple[SuiteResult, float]:
    """lm-eval's tasks on the review's local model, in lm-eval's own interpreter: (results, child CPU seconds)."""
    import tempfile

    from truecost.review.lm_eval_backend import lm_eval_python, run_lm_eval
    from truecost.review.targets import model_files

    spec = session.target.spec
    if not spec.startswith("hf:"):
        raise UserError("--tasks (lm-eval) runs on a local model: give --target hf:PATH")
    folder, gguf = model_files(spec, Path(spec[3:]))
    if gguf:
        raise UserError("--tasks (lm-eval) needs a model folder with config.json, not a .gguf file")
    with tempfile.TemporaryDirectory(prefix="truecost-lm-eval-") as work:
        run = run_lm_eval(lm_eval_python(opts.lm_eval_python), folder, opts.tasks, Path(work),
                          include_path=opts.tasks_path, limit=opts.limit)
    result = SuiteResult("lm_eval", metrics=run.metrics, details={**run.details, "cpu_seconds": run.cpu_seconds,
                                                                  "wall_seconds": run.wall_seconds})
    return result, run.cpu_seconds


def _run_suites(session: Session, opts: _Options, plan: _Plan) -> dict[str, SuiteResult]:
    out: dict[str, SuiteResult] = {}
    if "performance" in opts.suites:
        out["performance"] = run_performance(session, plan.eval_items)
    if "bias" in opts.suites:
        out["bias"] = bias.run_bias(session, plan.bias_sets)
    if "security" in opts.suites and plan.secrets is not None:
        out["security"] = run_security(session, plan.security_families, plan.secrets, judge_scope=opts.judge_scope,
                                       lexicon=plan.lexicon)
    return out


def _headline(suite_results: dict[str, SuiteResult], session: Session) -> dict[str, Any]:
    """What the ledger run's `results` record (other parts read these keys: add, never rename)."""
    metrics = [m for r in suite_results.values() for m in r.metrics]
    security_result = suite_results.get("security")
    return {"status": "stopped" if session.stop_reason else "completed", "stop_reason": session.stop_reason,
            "requests": session.spend.requests,
            "headline": {m.name: round(m.value, 6) for m in metrics if m.value == m.value},
            "security_verdict": security_result.details.get("verdict") if security_result else None,
            "unjudged": security_result.details.get("unjudged", 0) if security_result else 0,
            "judge_requests": session.spend.judge_requests}


def run_review(target: str | Target, suites: Iterable[str] | None = None,
               data: Mapping[str, str | Path] | Iterable[str] | str | Path | None = None,
               out_dir: str | Path | None = None, max_requests: int | None = None, max_usd: float | None = None,
               *, baseline: str | Path | None = None, fail_on: Iterable[str] | None = None,
               limit: int | None = None, seed: int = 0, max_new_tokens: int | None = None,
               judge: str | Target | None = None, judge_scope: str | None = None, ledger: Ledger | None = None,
               config: Config | None = None, progress: ProgressHook | None = None,
               on_start: Callable[[int], None] | None = None, tasks: Iterable[str] | None = None,
               tasks_path: str | Path | None = None, lm_eval_python: str | None = None,
               parent_id: str | None = None) -> ReviewResult:
    """Review a model: `target` is `hf:PATH`, `openai:URL#model` or an open Target.

    `suites` picks from performance, bias, security; `data` names user data sets (see `resolve_data`; built-in
    probe sets fill the gaps); `limit` caps items per data set; the budget (`max_requests`, `max_usd`) stops
    the review cleanly (status "stopped"). `judge` (a target spec) decides what the cheap detectors cannot:
    `judge_scope` "unsure" asks it only then, "all" for every answer that is not a refusal. With `out_dir`,
    writes results.json, items.csv and report.html there. The review's own cost, the judge's included, is one
    `review` run in the ledger. `tasks` (lm-eval task names, optional backend) run lm-eval on a local model in
    `lm_eval_python`'s interpreter, their metrics and CPU cost in the same review. Arguments left as None take
    their value from truecost.toml `[review]`, then the defaults (all suites, no caps, 64 new tokens).
    `parent_id` files the review's ledger run under a larger job's run (the demo's, a pipeline's).
    """
    from truecost.config import load_config
    from truecost.ledger import Ledger

    cfg = config or load_config()
    settings = review_settings(cfg)
    opts = _options(settings, suites, max_requests, max_usd, limit, max_new_tokens, fail_on, judge, judge_scope)
    opts.tasks = [t.strip() for t in (tasks if tasks is not None else settings.tasks) if t.strip()]
    where_tasks = tasks_path or settings.tasks_path
    opts.tasks_path = Path(where_tasks) if where_tasks else None
    opts.lm_eval_python = lm_eval_python or settings.lm_eval_python
    if opts.tasks:
        from truecost.review.lm_eval_backend import lm_eval_python as find_lm_eval

        find_lm_eval(opts.lm_eval_python)  # fail before the model is loaded
    base_metrics = load_baseline(baseline) if baseline else None
    spec = target if isinstance(target, str) else target.spec
    model_hint = spec.split("#", 1)[1] if spec.startswith("openai:") and "#" in spec else Path(spec[3:]).stem
    plan = _plan(opts.suites, resolve_data(data), opts.limit, seed, model_hint)
    tgt = parse_target(target) if isinstance(target, str) else target
    judge_target = parse_target(opts.judge) if isinstance(opts.judge, str) else opts.judge
    book = ledger if ledger is not None else Ledger(config_url=cfg.ledger.url)
    session = Session(tgt, Budget(opts.max_requests, opts.max_usd), cfg.compute_prices(), cfg, opts.max_new_tokens,
                      progress, total_items=plan.count(), judge=judge_target)
    if on_start:
        on_start(session.total_items)
    result = _execute(session, opts, plan, book, spec, seed, out_dir, parent_id)
    result.load = plan.log.to_dict()
    if base_metrics is not None:
        result.regressions = find_regressions(result.metrics, base_metrics, seed=seed)
    findings = result.suite_results["security"].findings if "security" in result.suite_results else []
    result.failed_on = failed_checks(result.regressions, opts.fail_on, findings)
    if out_dir is not None:
        result.out_dir = str(out_dir)
        write_outputs(result, Path(out_dir))
    return result


def _execute(session: Session, opts: _Options, plan: _Plan, book: Ledger, spec: str, seed: int,
             out_dir: str | Path | None, parent_id: str | None = None) -> ReviewResult:
    """Run the suites inside one metered ledger run (the judge's calls included) and collect the result."""
    from truecost.estimate import compute_cost_usd

    started = datetime.now(UTC).isoformat(timespec="seconds")
    params = {"target": spec, "suites": opts.suites, "data": plan.sources, "limit": opts.limit, "seed": seed,
              "max_requests": opts.max_requests, "max_usd": opts.max_usd,
              "judge": session.judge.spec if session.judge else None}
    wall0 = time.perf_counter()
    try:
        with book.run("review", spec, params=params, prices=session.prices, parent_id=parent_id) as run:
            suite_results = _run_suites(session, opts, plan)
            child_cpu = 0.0
            if opts.tasks:
                suite_results["lm_eval"], child_cpu = _run_lm_eval(session, opts)
            spend = session.spend
            run.tokens = spend.prompt_tokens + spend.completion_tokens
            run.gpu_hours = spend.gpu_seconds / 3600.0
            _, cpu = run.elapsed()
            # lm-eval's child process is not in this process's CPU time: priced on top.
            compute_usd = compute_cost_usd(cpu + child_cpu, run.gpu_hours, session.prices)
            run.cost_usd = compute_usd + spend.api_usd
            if session.stop_reason:
                run.status = "stopped"
            run.results.update({**_headline(suite_results, session), "out_dir": str(out_dir) if out_dir else None})
    finally:
        session.target.close()
        if session.judge is not None:
            session.judge.close()
    record = run.record
    cost = {"review_cost_usd": record.cost_usd, "api_usd": spend.api_usd, "compute_usd": compute_usd,
            "requests": spend.requests, "prompt_tokens": spend.prompt_tokens,
            "completion_tokens": spend.completion_tokens, "unpriced_requests": spend.unpriced_requests,
            "judge_requests": spend.judge_requests, "cpu_seconds": record.cpu_seconds,
            "lm_eval_cpu_seconds": child_cpu,
            "wall_seconds": time.perf_counter() - wall0, "energy_kwh": record.energy_kwh}
    return ReviewResult(target=spec, model=session.target.model_name,
                        suites=opts.suites + (["lm_eval"] if "lm_eval" in suite_results else []),
                        status="stopped" if session.stop_reason else "completed",
                        metrics=[m for r in suite_results.values() for m in r.metrics], suite_results=suite_results,
                        cost=cost, started_at=started, stop_reason=session.stop_reason, fail_on=opts.fail_on,
                        run_id=record.id, data=plan.sources, judge=session.judge.spec if session.judge else None)


ITEM_COLUMNS = ("suite", "dataset", "family", "group", "prompt", "answer", "correct", "succeeded", "refused",
                "toxicity", "regard", "decided_by", "reason")


def write_outputs(result: ReviewResult, out_dir: Path) -> None:
    """results.json, items.csv (every judged item, for filtering in a spreadsheet) and report.html in `out_dir`."""
    from truecost.review.report import render_html

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {out_dir}: {exc}") from None
    data = result.to_dict()
    (out_dir / "results.json").write_text(json.dumps(data, indent=1, allow_nan=False), encoding="utf-8")
    with (out_dir / "items.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=ITEM_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for suite, suite_result in result.suite_results.items():
            for item in suite_result.items:
                writer.writerow({"suite": suite, **item})
    (out_dir / "report.html").write_text(render_html(data), encoding="utf-8")
