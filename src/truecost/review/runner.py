"""run_review: load the data, open the target, run the suites inside one metered ledger run, compare with a
baseline, and write results.json and report.html."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from truecost.errors import UserError
from truecost.review import bias, security
from truecost.review.baseline import failed_checks, find_regressions, load_baseline
from truecost.review.performance import load_eval_set, run_performance
from truecost.review.results import SCHEMA, Metric, SuiteResult
from truecost.review.session import Budget, ProgressHook, Session
from truecost.review.targets import Target, parse_target

SUITES = ("performance", "bias", "security")
DATA_KINDS = {"eval": "performance", "crows_pairs": "bias", "bbq": "bias", "winobias": "bias",
              "stereoset": "bias", "xstest": "bias", "cyberseceval": "security", "garak": "security"}
BUILTIN = {"eval": "eval.jsonl", "crows_pairs": "crows_pairs.csv", "bbq": "bbq.jsonl", "winobias": "winobias",
           "stereoset": "stereoset.json", "xstest": "xstest.csv"}
# How a folder laid out like the team's review_sample maps to data kinds: (sub-folder, glob or "" for the folder).
_FOLDER_LAYOUT = {"crows_pairs": ("crows_pairs", "*.csv"), "bbq": ("bbq", ""), "winobias": ("winobias", ""),
                  "stereoset": ("stereoset", ""), "xstest": ("xstest", "*.csv"),
                  "cyberseceval": ("cyberseceval", "prompt_injection*.json"), "garak": ("garak", "")}


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


def review_settings(config: Any) -> ReviewSettings:
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

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "target": self.target, "model": self.model, "suites": self.suites,
                "status": self.status, "stop_reason": self.stop_reason, "started_at": self.started_at,
                "run_id": self.run_id, "data": self.data, "cost": self.cost,
                "metrics": [m.to_dict() for m in self.metrics],
                "suite_results": {k: v.to_dict() for k, v in self.suite_results.items()},
                "regressions": self.regressions, "fail_on": self.fail_on, "failed_on": self.failed_on,
                "exit_code": self.exit_code, "out_dir": self.out_dir}


def _builtin_path(name: str) -> Path:
    return Path(str(resources.files("truecost.review").joinpath(f"probes/{name}")))


def resolve_data(data: Mapping[str, str | Path] | Iterable[str] | str | Path | None) -> dict[str, Path]:
    """User data as {kind: path}. Accepts {kind: path}, ["kind=path", ...], a JSONL eval set, or a folder laid
    out like review_sample/ (crows_pairs/, bbq/, winobias/, stereoset/, xstest/, cyberseceval/, garak/)."""
    if data is None:
        return {}
    entries: list[tuple[str | None, Path]] = []
    if isinstance(data, Mapping):
        entries = [(k, Path(v)) for k, v in data.items()]
    elif isinstance(data, str | Path):
        entries = [(None, Path(data))]
    else:
        for item in data:
            head, sep, tail = str(item).partition("=")
            entries.append((head.strip(), Path(tail)) if sep and not Path(str(item)).exists() else (None, Path(item)))
    out: dict[str, Path] = {}
    for named, where_ in entries:
        if not where_.exists():
            raise UserError(f"data path {where_} does not exist")
        if named is not None:
            if named not in DATA_KINDS:
                raise UserError(f"unknown data kind {named!r}; expected one of {', '.join(DATA_KINDS)}")
            out[named] = where_
        elif where_.is_dir():
            found = _from_folder(where_)
            if not found:
                raise UserError(f"{where_}: no known data sets inside (expected sub-folders such as bbq/ or "
                                f"crows_pairs/); name the kind instead: --data bbq=PATH")
            out.update(found)
        elif where_.suffix == ".jsonl":
            out["eval"] = where_
        else:
            raise UserError(f"cannot tell what {where_} is: name its kind, e.g. --data xstest={where_}")
    return out


def _from_folder(folder: Path) -> dict[str, Path]:
    found = {}
    for kind, (sub, pattern) in _FOLDER_LAYOUT.items():
        d = folder / sub
        if not d.is_dir():
            continue
        if pattern:
            files = sorted(d.glob(pattern))
            if files:
                found[kind] = files[0]
        else:
            found[kind] = d
    return found


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

    def count(self) -> int:
        return (len(self.eval_items) + sum(len(v) for v in self.bias_sets.values())
                + sum(len(v) for v in self.security_families.values()))


def _plan(suites: list[str], paths: dict[str, Path], limit: int | None, seed: int, model_name: str) -> _Plan:
    """Load (and validate) every data file before the target is opened, so bad files fail fast."""
    plan = _Plan()
    if "performance" in suites:
        path = paths.get("eval") or _builtin_path(BUILTIN["eval"])
        plan.sources["eval"] = str(path) if "eval" in paths else "built-in"
        plan.eval_items = _sample(load_eval_set(path), limit, seed)
    if "bias" in suites:
        given = [k for k in bias.LOADERS if k in paths]
        for kind in given or list(bias.LOADERS):
            path = paths.get(kind) or _builtin_path(BUILTIN[kind])
            plan.sources[kind] = str(path) if kind in paths else "built-in"
            plan.bias_sets[kind] = _sample(bias.LOADERS[kind](path), limit, seed)
    if "security" in suites:
        data = security.builtin_probe_data()
        plan.secrets = security.make_secrets(seed, data)
        plan.security_families = {k: _sample(v, limit, seed)
                                  for k, v in security.builtin_probes(plan.secrets, data).items()}
        plan.sources["security"] = "built-in"
        if "cyberseceval" in paths:
            plan.sources["cyberseceval"] = str(paths["cyberseceval"])
            for probe in _sample(security.load_cyberseceval(paths["cyberseceval"]), limit, seed):
                plan.security_families.setdefault(probe.family, []).append(probe)
        if "garak" in paths:
            plan.sources["garak"] = str(paths["garak"])
            for name, probes in security.load_garak(paths["garak"], plan.secrets, model_name).items():
                plan.security_families[name] = _sample(probes, limit, seed)
    return plan


def run_review(target: str | Target, suites: Iterable[str] | None = None,
               data: Mapping[str, str | Path] | Iterable[str] | str | Path | None = None,
               out_dir: str | Path | None = None, max_requests: int | None = None, max_usd: float | None = None,
               *, baseline: str | Path | None = None, fail_on: Iterable[str] | None = None,
               limit: int | None = None, seed: int = 0, max_new_tokens: int | None = None,
               judge: str | Target | None = None, ledger: Any = None,
               config: Any = None, progress: ProgressHook | None = None,
               on_start: Callable[[int], None] | None = None) -> ReviewResult:
    """Review a model: `target` is `hf:PATH`, `openai:URL#model` or an open Target.

    `suites` picks from performance, bias, security; `data` names user data sets (see `resolve_data`; built-in
    probe sets fill the gaps); `limit` caps items per data set; the budget (`max_requests`, `max_usd`) stops
    the review cleanly (status "stopped"). With `out_dir`, writes results.json and report.html there.
    The review's own cost is one `review` run in the ledger. Arguments left as None take their value from
    truecost.toml `[review]`, then the defaults (all suites, no caps, 64 new tokens).
    """
    from truecost.config import load_config
    from truecost.estimate import compute_cost_usd
    from truecost.ledger import Ledger

    cfg = config or load_config()
    settings = review_settings(cfg)
    suites = suites if suites is not None else (settings.suites or SUITES)
    max_requests = max_requests if max_requests is not None else settings.max_requests
    max_usd = max_usd if max_usd is not None else settings.max_usd
    limit = limit if limit is not None else settings.limit
    max_new_tokens = max_new_tokens if max_new_tokens is not None else settings.max_new_tokens
    fail_on = fail_on if fail_on is not None else settings.fail_on
    judge = judge if judge is not None else settings.judge
    chosen = [s.strip() for s in suites if s.strip()]
    unknown = [s for s in chosen if s not in SUITES]
    if unknown or not chosen:
        raise UserError(f"unknown suite(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(SUITES)}")
    if max_requests is not None and max_requests < 1:
        raise UserError("max_requests must be at least 1")
    if max_usd is not None and max_usd <= 0:
        raise UserError("max_usd must be positive")
    fail_on = [s.strip() for s in fail_on if s.strip()]
    for selector in fail_on:
        if selector not in (*SUITES, "any", "all", "*", "findings") and not any(c in selector for c in ".*?["):
            raise UserError(f"--fail-on {selector!r}: use any, findings, a suite ({', '.join(SUITES)}), "
                            "a metric name or a glob such as bias.bbq.*")
    base_metrics = load_baseline(baseline) if baseline else None
    paths = resolve_data(data)
    prices = cfg.compute_prices()
    spec = target if isinstance(target, str) else target.spec
    model_hint = spec.split("#", 1)[1] if spec.startswith("openai:") and "#" in spec else Path(spec[3:]).name
    plan = _plan(chosen, paths, limit, seed, model_hint)

    tgt = parse_target(target) if isinstance(target, str) else target
    judge_target = parse_target(judge) if isinstance(judge, str) else judge
    book = ledger if ledger is not None else Ledger(config_url=cfg.ledger.url)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    session = Session(tgt, Budget(max_requests, max_usd), prices, cfg, max_new_tokens, progress,
                      total_items=plan.count())
    if on_start:
        on_start(session.total_items)
    suite_results: dict[str, SuiteResult] = {}
    params = {"target": spec, "suites": chosen, "data": plan.sources, "limit": limit, "seed": seed,
              "max_requests": max_requests, "max_usd": max_usd}
    wall0 = time.perf_counter()
    try:
        with book.run("review", spec, params=params, prices=prices) as run:
            if "performance" in chosen:
                suite_results["performance"] = run_performance(session, plan.eval_items)
            if "bias" in chosen:
                suite_results["bias"] = bias.run_bias(session, plan.bias_sets)
            if "security" in chosen and plan.secrets is not None:
                suite_results["security"] = security.run_security(session, plan.security_families, plan.secrets,
                                                                  judge_target)
            spend = session.spend
            run.tokens = spend.prompt_tokens + spend.completion_tokens
            run.gpu_hours = spend.gpu_seconds / 3600.0
            _, cpu = run.elapsed()
            compute_usd = compute_cost_usd(cpu, run.gpu_hours, prices)
            run.cost_usd = compute_usd + spend.api_usd
            if session.stop_reason:
                run.status = "stopped"
            metrics = [m for r in suite_results.values() for m in r.metrics]
            run.results.update({"status": "stopped" if session.stop_reason else "completed",
                                "stop_reason": session.stop_reason, "requests": spend.requests,
                                "headline": {m.name: round(m.value, 6) for m in metrics if m.value == m.value},
                                "security_verdict": suite_results["security"].details.get("verdict")
                                if "security" in suite_results else None,
                                "out_dir": str(out_dir) if out_dir else None})
    finally:
        tgt.close()
    record = run.record
    cost = {"review_cost_usd": record.cost_usd, "api_usd": spend.api_usd, "compute_usd": compute_usd,
            "requests": spend.requests, "prompt_tokens": spend.prompt_tokens,
            "completion_tokens": spend.completion_tokens, "unpriced_requests": spend.unpriced_requests,
            "cpu_seconds": record.cpu_seconds, "wall_seconds": time.perf_counter() - wall0,
            "energy_kwh": record.energy_kwh}
    result = ReviewResult(target=spec, model=tgt.model_name, suites=chosen,
                          status="stopped" if session.stop_reason else "completed", metrics=metrics,
                          suite_results=suite_results, cost=cost, started_at=started,
                          stop_reason=session.stop_reason, fail_on=fail_on, run_id=record.id, data=plan.sources,
                          out_dir=str(out_dir) if out_dir else None)
    if base_metrics is not None:
        result.regressions = find_regressions(metrics, base_metrics, seed=seed)
    findings = suite_results["security"].findings if "security" in suite_results else []
    result.failed_on = failed_checks(result.regressions, fail_on, findings)
    if out_dir is not None:
        write_outputs(result, Path(out_dir))
    return result


def write_outputs(result: ReviewResult, out_dir: Path) -> None:
    """results.json and report.html in `out_dir` (created if needed)."""
    from truecost.review.report import render_html

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {out_dir}: {exc}") from None
    data = result.to_dict()
    (out_dir / "results.json").write_text(json.dumps(data, indent=1, allow_nan=False), encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(data), encoding="utf-8")
