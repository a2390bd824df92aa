"""Which ledger runs measure which TCO input, and how: the one place that reads the parts' `results` for the TCO.

Keys read, per part (as each part records them; a run lacking a key is skipped and the listing says so):
- curate runs: `results.tokens_removed_fraction` (share of input tokens removed), else `results.tokens_removed`
  over `run.tokens` (tokens in) for a run that was no dry run (`params.dry_run`). -> poor.duplicate_share is the
  token-weighted share over the curate runs read; well.duplicate_share = 0, since the well-prepared project
  trains on the curated output. Curate runs define both sides whatever project they are tagged with.
- train and tune runs: `params.config` (`max_steps`, `micro_batch`, `grad_accum`, `seq_len`), `params.world_size`,
  `params.estimate.gpu`, `results.start_step`, `results.measured_vs_estimate.device_hours` (`estimated` for the
  whole plan, `measured`) and `run.tokens` -> utilisation_factor = estimated device-hours per planned token over
  measured device-hours per trained token, token-weighted over runs that started from step 0 on the plan's device
  type (truecost.toml `[hardware].gpu`; a CPU run says nothing of a GPU's utilisation). `run.status`,
  `results.stopped_by` and `run.cost_usd` -> failed_run_share = spend of runs that failed, were stopped (other
  than by early stopping or pruning, which end a run on purpose) or were lost (status `lost`, or still `running`
  a day after they started), over all their spend.
- review runs: `results.headline["performance.accuracy"]`, `results.headline["security.pii_leakage.
  attack_success_rate"]` and every headline key ending in `defect_rate`, each where present, and
  `results.n_items` (items reviewed) where recorded. A project's rates are combined over all its review runs
  (the mean of each rate; a run that records only defect rates, such as the demo's generation scan, counts as
  much as one that records accuracy): bad = 1 - accuracy x (1 - leak rate) x product(1 - defect rate), a missing
  accuracy counting as 1. When both projects were reviewed, only the rates both recorded are compared, and what
  carries to the plan is their ratio (see the transfer rule in `truecost.estimate.tco`): poor.bad_output_ratio =
  bad(poor) / bad(well), well = 1, with a 95% interval when every run recorded `n_items` (Katz's log interval for
  a ratio of two proportions, counts = rate x the smallest item count of the rates combined; 0.5 is added to a
  zero count). A review of only one project measures that project's bad_output_rate itself (the user's own
  model); the other project is then aligned to it (no effect).
- monitor runs: `results.action` and `results.observed_start` / `results.observed_end` (ISO times of the first
  and last monitored record) -> retrains_per_year = retrain decisions over the years observed (the union of the
  runs' periods); runs without observed times cannot give a rate and are skipped.
- route runs (`route eval`): for each learned router (not the random, zero or oracle baselines)
  `results[router].cost_saving_at_best_single_quality`, or `results.cost_saving_at_best_single_quality` for a run
  that records one router -> well.routing_saving_share = the best router's saving (None, a router that never
  reaches the strong model's quality, counts as 0); poor = 0, the all-strong baseline the saving is measured
  against. Route runs define both sides.
- the gateway's request log (requests whose `run_id` is among the runs read; all requests without a run tree):
  requests with a `router_score` were routed -> well.routing_saving_share = 1 - their spend over the spend had
  each gone to the priciest model routed to (`truecost.estimate.costing.token_price_usd`, else that model's
  measured dollars per token); it replaces a route eval's figure, since production traffic beats a test set.

Each run's project: the `arms` argument (run id or prefix -> "well" | "poor", inherited by descendants), else
`params["tco_arm"]` or `results["tco_arm"]` on the run or an ancestor, else the user's own (well-prepared) project.
With a run tree, the runs named in `arms` (and their descendants) are read too, even from outside the tree: parts
that cannot nest their run under a caller's (say a review run) are brought in by naming them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from truecost.errors import UserError
from truecost.estimate.tco import ARMS, Arm
from truecost.units import DAYS_PER_YEAR

if TYPE_CHECKING:
    from truecost.config import Config
    from truecost.ledger import Ledger, RequestRecord, RunRecord

ROUTE_BASELINES = ("random", "zero", "oracle")
ON_PURPOSE = ("early_stopping", "pruned", "completed")  # ways a stopped training run still delivered its model
PII_LEAK = "security.pii_leakage.attack_success_rate"


@dataclass(frozen=True)
class Measurement:
    """One TCO input of one project, measured by ledger runs: the value, the runs, and how it was computed."""

    input: str
    arm: Arm
    value: float
    run_ids: tuple[str, ...]
    how: str
    low: float | None = None  # 95% interval, where the runs allow one
    high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"input": self.input, "arm": self.arm, "value": self.value, "run_ids": list(self.run_ids),
                "how": self.how, "low": self.low, "high": self.high}


@dataclass
class LedgerScope:
    """The runs and requests read, each run's project, and notes on what could not be used."""

    runs: list[RunRecord]
    requests: list[RequestRecord]
    arms: dict[str, Arm]
    notes: list[str] = field(default_factory=list)

    def of_kind(self, *kinds: str) -> list[RunRecord]:
        """Runs of these kinds, oldest first."""
        return sorted((r for r in self.runs if r.kind in kinds), key=lambda r: r.started_at)

    def by_arm(self, runs: Iterable[RunRecord]) -> dict[Arm, list[RunRecord]]:
        """Runs grouped by project (only projects that have runs)."""
        out: dict[Arm, list[RunRecord]] = {}
        for run in runs:
            out.setdefault(self.arms[run.id], []).append(run)
        return out


def _short(run_ids: Iterable[str]) -> str:
    ids = list(run_ids)
    return ", ".join(i[:8] for i in ids[:4]) + (f" (+{len(ids) - 4} more)" if len(ids) > 4 else "")


# -- which runs, which project ------------------------------------------------------------------------------------
def _match(prefix: str, ids: Iterable[str]) -> str:
    found = [i for i in ids if i.startswith(prefix)]
    if len(found) != 1:
        raise UserError(f"no run {prefix!r} among the runs read" if not found else f"run id prefix {prefix!r} is "
                        "ambiguous")
    return found[0]


def tree(runs: Sequence[RunRecord], root: str) -> list[RunRecord]:
    """`root` and every run below it (by parent_id)."""
    children: dict[str | None, list[RunRecord]] = {}
    for run in runs:
        children.setdefault(run.parent_id, []).append(run)
    by_id = {r.id: r for r in runs}
    out, todo = [], [by_id[root]]
    while todo:
        run = todo.pop()
        out.append(run)
        todo.extend(children.get(run.id, []))
    return out


def project_of_runs(runs: Sequence[RunRecord], arms: Mapping[str, str] | None = None) -> dict[str, Arm]:
    """Each run's project: explicit `arms`, else a `tco_arm` tag on it or an ancestor, else "well"."""
    by_id = {r.id: r for r in runs}
    explicit: dict[str, Arm] = {}
    for prefix, arm in (arms or {}).items():
        if arm not in ARMS:
            raise UserError(f"project for run {prefix!r} must be well or poor, got {arm!r}")
        explicit[_match(prefix, by_id)] = "well" if arm == "well" else "poor"

    def find(run_id: str | None, seen: int = 0) -> Arm | None:
        run = by_id.get(run_id or "")
        if run is None or seen > len(by_id):
            return None
        if run.id in explicit:
            return explicit[run.id]
        tag = run.params.get("tco_arm") or run.results.get("tco_arm")
        return tag if tag in ARMS else find(run.parent_id, seen + 1)

    return {r.id: find(r.id) or "well" for r in runs}


def scope(ledger: Ledger, run_tree: str | None, arms: Mapping[str, str] | None) -> LedgerScope:
    """Read the runs (the tree under `run_tree`, plus the trees of runs named in `arms`; or all) and their
    requests, and assign each run its project."""
    everything = ledger.list_runs()
    if run_tree is None:
        runs, requests = everything, ledger.list_requests()
    else:
        roots = [ledger.get_run(run_tree).id, *(_match(prefix, (r.id for r in everything)) for prefix in arms or {})]
        by_id = {run.id: run for root in roots for run in tree(everything, root)}
        runs = sorted(by_id.values(), key=lambda r: r.started_at)
        requests = [q for run in runs for q in ledger.list_requests(run_id=run.id)]
    return LedgerScope(runs=runs, requests=requests, arms=project_of_runs(runs, arms))


# -- one extractor per part ------------------------------------------------------------------------------------------
def _curate(s: LedgerScope) -> list[Measurement]:
    used, removed, total = [], 0.0, 0.0
    for run in s.of_kind("curate"):
        r = run.results
        tokens = float(run.tokens or 0)
        if r.get("tokens_removed_fraction") is not None and tokens > 0:
            share = float(r["tokens_removed_fraction"])
        elif r.get("tokens_removed") is not None and tokens > 0 and not run.params.get("dry_run"):
            share = float(r["tokens_removed"]) / tokens
        else:
            s.notes.append(f"curate run {run.id[:8]}: no tokens_removed_fraction (or tokens_removed and tokens in)")
            continue
        used.append(run.id)
        removed, total = removed + share * tokens, total + tokens
    if not used:
        return []
    share = removed / total
    how = (f"curation removed {share:.1%} of {total:,.0f} tokens (token-weighted over {len(used)} curate run(s))")
    return [Measurement("duplicate_share", "poor", share, tuple(used), how),
            Measurement("duplicate_share", "well", 0.0, tuple(used),
                        "the well-prepared project trains on the curated output")]


def _planned_tokens(run: RunRecord) -> float | None:
    config = run.params.get("config") or {}
    try:
        per_step = float(config["micro_batch"]) * float(config.get("grad_accum", 1)) * float(config["seq_len"])
        return float(config["max_steps"]) * per_step * float(run.params.get("world_size") or 1)
    except (KeyError, TypeError, ValueError):
        return None


def _utilisation(run: RunRecord) -> float | None:
    """Estimated device-hours per planned token over measured device-hours per trained token."""
    hours = (run.results.get("measured_vs_estimate") or {}).get("device_hours") or {}
    planned, estimated, measured = _planned_tokens(run), hours.get("estimated"), hours.get("measured")
    if run.results.get("start_step", 0) or not (planned and estimated and measured and run.tokens):
        return None
    return (float(estimated) / planned) / (float(measured) / float(run.tokens))


def _plan_gpu(config: Config) -> str:
    from truecost.estimate.catalogue import find_gpu

    try:
        return find_gpu(config.hardware.gpu, config.gpus).name
    except UserError:
        return str(config.hardware.gpu)


def _on_plan_device(run: RunRecord, plan_gpu: str) -> bool:
    """Utilisation carries to the plan only from runs on the plan's device type (a CPU run says nothing of an
    H100's)."""
    device = str((run.params.get("estimate") or {}).get("gpu") or "")
    return re.sub(r"[^a-z0-9]", "", device.lower()) == re.sub(r"[^a-z0-9]", "", plan_gpu.lower())


def _training(s: LedgerScope, config: Config) -> list[Measurement]:
    out, plan_gpu = [], _plan_gpu(config)
    for arm, runs in s.by_arm(s.of_kind("train", "tune")).items():
        elsewhere = [run for run in runs if not _on_plan_device(run, plan_gpu)]
        if elsewhere:
            s.notes.append(f"{arm} training run(s) {_short(r.id for r in elsewhere)} ran on another device than "
                           f"the plan's {plan_gpu}: their utilisation is not carried to it")
        rated = [(run, u) for run in runs if run not in elsewhere and (u := _utilisation(run)) is not None]
        if rated:
            weight = sum(float(run.tokens) for run, _ in rated)
            value = sum(u * float(run.tokens) for run, u in rated) / weight
            out.append(Measurement("utilisation_factor", arm, value, tuple(run.id for run, _ in rated),
                                   f"{len(rated)} run(s) used {1 / value:.3g}x the device-hours per token the "
                                   "estimate predicted (token-weighted)"))
        spend = sum(max(run.cost_usd, 0.0) for run in runs)
        if spend > 0:
            lost = [run for run in runs if _wasted(run)]
            share = sum(max(run.cost_usd, 0.0) for run in lost) / spend
            out.append(Measurement("failed_run_share", arm, share, tuple(run.id for run in runs),
                                   f"{len(lost)} of {len(runs)} training run(s) failed, were stopped or never "
                                   f"closed: ${spend * share:,.4f} of ${spend:,.4f}"))
    return out


def _wasted(run: RunRecord) -> bool:
    """Failed, stopped short of its plan (not on purpose), or lost (so marked, or still open a day on)."""
    if run.status in ("failed", "lost"):
        return True
    if run.status == "running":
        return run.ended_at is None and _is_stale(run)
    return run.status == "stopped" and run.results.get("stopped_by") not in ON_PURPOSE


def _is_stale(run: RunRecord) -> bool:
    """A run still marked running a day after it started was lost (its process died without closing it)."""
    from datetime import UTC, timedelta

    return datetime.now(UTC) - run.started_at > timedelta(days=1)


ACCURACY = "performance.accuracy"
Z95 = 1.959963984540054


def _is_rate(key: str) -> bool:
    return key in (ACCURACY, PII_LEAK) or key.endswith("defect_rate")


@dataclass
class ReviewRates:
    """One project's review rates: the mean of each rate over its runs, and its item count (None: unknown)."""

    runs: list[RunRecord]
    means: dict[str, float]
    items: dict[str, int | None]

    def bad(self, keys: Iterable[str]) -> float:
        """1 - accuracy x (1 - leak) x product(1 - defect rates), over `keys` (no accuracy recorded: 1)."""
        good = 1.0
        for key in keys:
            good *= self.means[key] if key == ACCURACY else 1.0 - self.means[key]
        return 1.0 - good

    def n(self, keys: Iterable[str]) -> int | None:
        """The smallest item count among `keys`' rates; None when any is unknown."""
        counts = [self.items[k] for k in keys]
        return None if not counts or any(c is None for c in counts) else min(c for c in counts if c is not None)


def review_rates(runs: Sequence[RunRecord]) -> ReviewRates:
    """Combine a project's review runs: each rate's mean over the runs that recorded it, items summed."""
    values: dict[str, list[float]] = {}
    counts: dict[str, list[int | None]] = {}
    for run in runs:
        n = run.results.get("n_items")
        for key, value in (run.results.get("headline") or {}).items():
            if value is not None and _is_rate(key):
                values.setdefault(key, []).append(float(value))
                counts.setdefault(key, []).append(int(n) if n else None)
    items = {k: (None if any(c is None for c in v) else sum(c for c in v if c is not None)) for k, v in counts.items()}
    return ReviewRates(list(runs), {k: sum(v) / len(v) for k, v in values.items()}, items)


def ratio_interval(p_poor: float, n_poor: int | None, p_well: float, n_well: int | None
                   ) -> tuple[float | None, float | None, float | None]:
    """(ratio, low, high) of two proportions: Katz's log interval from counts p x n (0.5 added to a zero count);
    the interval is None without counts, the ratio None when the well rate is 0 and no counts correct it."""
    import math

    if not (n_poor and n_well):
        return (p_poor / p_well if p_well > 0 else (1.0 if p_poor == 0 else None)), None, None
    x1, x2 = p_poor * n_poor, p_well * n_well
    if x1 == 0 or x2 == 0:
        x1, x2, n1, n2 = x1 + 0.5, x2 + 0.5, n_poor + 1.0, n_well + 1.0
    else:
        n1, n2 = float(n_poor), float(n_well)
    ratio = p_poor / p_well if p_well > 0 else (x1 / n1) / (x2 / n2)
    se = math.sqrt(max(0.0, 1 / x1 - 1 / n1 + 1 / x2 - 1 / n2))
    return ratio, ratio * math.exp(-Z95 * se), ratio * math.exp(Z95 * se)


def _review(s: LedgerScope) -> list[Measurement]:
    reviewed = {arm: review_rates(runs) for arm, runs in
                s.by_arm(r for r in s.of_kind("review") if r.status in ("completed", "stopped")).items()}
    for arm, rates in list(reviewed.items()):
        if not rates.means:
            s.notes.append(f"{arm} review run(s) {_short(r.id for r in rates.runs)}: no accuracy, leak or defect "
                           "rate")
            del reviewed[arm]
    if len(reviewed) == 1:
        arm, rates = next(iter(reviewed.items()))
        keys = sorted(rates.means)
        return [Measurement("bad_output_rate", arm, rates.bad(keys), tuple(r.id for r in rates.runs),
                            f"1 - accuracy x (1 - PII leak rate) x (1 - defect rates) over {', '.join(keys)} in "
                            f"{len(rates.runs)} review run(s) of the {arm} project's model")]
    if len(reviewed) < 2:
        return []
    return _review_ratio(s, reviewed["poor"], reviewed["well"])


def _review_ratio(s: LedgerScope, poor: ReviewRates, well: ReviewRates) -> list[Measurement]:
    """Reviews of both projects: the ratio of their bad-output rates over the rates both recorded."""
    keys = sorted(set(poor.means) & set(well.means))
    left_out = sorted(set(poor.means) ^ set(well.means))
    if left_out:
        s.notes.append(f"review rates recorded for one project only are not compared: {', '.join(left_out)}")
    if not keys:
        return []
    bad_poor, bad_well = poor.bad(keys), well.bad(keys)
    ratio, low, high = ratio_interval(bad_poor, poor.n(keys), bad_well, well.n(keys))
    run_ids = tuple(r.id for r in [*poor.runs, *well.runs])
    if ratio is None:
        s.notes.append("the well project's reviews found no bad output and recorded no item counts: no ratio")
        return []
    interval = f", 95% interval {low:.3g}-{high:.3g}" if low is not None and high is not None else \
        " (no interval: item counts not recorded)"
    how = (f"bad-output rate {bad_poor:.3g} (poor) over {bad_well:.3g} (well) = {ratio:.3g}{interval}; rates "
           f"compared: {', '.join(keys)}; measured on the reviewed models and carried to the plan as a ratio")
    return [Measurement("bad_output_ratio", "poor", ratio, run_ids, how, low, high),
            Measurement("bad_output_ratio", "well", 1.0, run_ids, "the reference the ratio is measured against")]


def _period(run: RunRecord) -> tuple[datetime, datetime] | None:
    try:
        start = datetime.fromisoformat(str(run.results["observed_start"]))
        end = datetime.fromisoformat(str(run.results["observed_end"]))
    except (KeyError, ValueError):
        return None
    return (start, end) if end > start else None


def _union_days(periods: list[tuple[datetime, datetime]]) -> float:
    days, current = 0.0, None
    for start, end in sorted(periods):
        if current is None or start > current[1]:
            if current is not None:
                days += (current[1] - current[0]).total_seconds() / 86400.0
            current = (start, end)
        else:
            current = (current[0], max(current[1], end))
    if current is not None:
        days += (current[1] - current[0]).total_seconds() / 86400.0
    return days


def _monitor(s: LedgerScope) -> list[Measurement]:
    out = []
    for arm, runs in s.by_arm(r for r in s.of_kind("monitor") if r.status == "completed").items():
        timed = [(run, p) for run in runs if (p := _period(run)) is not None]
        if len(timed) < len(runs):
            s.notes.append(f"monitor run(s) {_short(r.id for r in runs if _period(r) is None)}: no "
                           "observed_start/observed_end, so no retrain rate")
        days = _union_days([p for _, p in timed])
        if not timed or days <= 0:
            continue
        retrains = sum(1 for run, _ in timed if run.results.get("action") == "retrain")
        out.append(Measurement("retrains_per_year", arm, retrains / days * DAYS_PER_YEAR,
                               tuple(run.id for run, _ in timed),
                               f"{retrains} retrain decision(s) in {len(timed)} monitor run(s) over {days:.3g} "
                               "day(s) of traffic"))
    return out


def _router_saving(results: Mapping[str, Any]) -> float | None:
    """The best learned router's saving at the strong model's quality; None when the run recorded none."""
    key = "cost_saving_at_best_single_quality"
    found = [v.get(key) for name, v in results.items() if isinstance(v, dict) and name not in ROUTE_BASELINES
             and key in v]
    if key in results:
        found.append(results[key])
    if not found:
        return None
    return max(float(v) if v is not None else 0.0 for v in found)


def _route(s: LedgerScope) -> list[Measurement]:
    rated = [(run, v) for run in s.of_kind("route") if (v := _router_saving(run.results)) is not None]
    if not rated:
        return []
    run, value = rated[-1]  # the newest evaluation
    return [Measurement("routing_saving_share", "well", value, (run.id,),
                        f"route eval: the best learned router saves {value:.1%} of serving cost at the strong "
                        "model's quality on held-out prompts"),
            Measurement("routing_saving_share", "poor", 0.0, (run.id,),
                        "every request to the strong model: the baseline the router's saving is measured against")]


def _gateway(s: LedgerScope, config: Config) -> list[Measurement]:
    from truecost.estimate.costing import token_price_usd

    routed = [q for q in s.requests if q.router_score is not None and q.status == "ok"]
    models = sorted({q.model for q in routed})
    if len(models) < 2:
        return []
    per_token = {m: sum(q.cost_usd for q in routed if q.model == m)
                 / max(1, sum(q.prompt_tokens + q.completion_tokens for q in routed if q.model == m)) for m in models}
    strong = max(models, key=lambda m: per_token[m])
    spent = sum(q.cost_usd for q in routed)
    if_strong = 0.0
    for q in routed:
        price = token_price_usd(strong, q.prompt_tokens, q.completion_tokens, config)
        if_strong += price if price is not None else per_token[strong] * (q.prompt_tokens + q.completion_tokens)
    if if_strong <= 0:
        return []
    mix = ", ".join(f"{m} {sum(q.model == m for q in routed) / len(routed):.0%}" for m in models)
    runs = tuple(sorted({q.run_id for q in routed if q.run_id}))
    value = 1.0 - spent / if_strong
    return [Measurement("routing_saving_share", "well", value, runs,
                        f"gateway log: {len(routed)} routed request(s) ({mix}) cost ${spent:,.4f} against "
                        f"${if_strong:,.4f} all on {strong}"),
            Measurement("routing_saving_share", "poor", 0.0, runs, f"every request to {strong}, the priciest model "
                        "routed to")]


def measure(s: LedgerScope, config: Config) -> list[Measurement]:
    """Every measurement the scope's runs and requests support; a later one of the same (input, project) wins."""
    found = [*_curate(s), *_training(s, config), *_review(s), *_monitor(s), *_route(s), *_gateway(s, config)]
    latest = {(m.input, m.arm): m for m in found}
    return list(latest.values())


def _safe_url(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def read_measurements(ledger: Ledger, *, run_tree: str | None = None, arms: Mapping[str, str] | None = None,
                      config: Config) -> tuple[list[Measurement], dict[str, Any]]:
    """The measurements a ledger supports, and a summary of what was read (for `TcoResult.ledger`)."""
    s = scope(ledger, run_tree, arms)
    measurements = measure(s, config)
    kinds: dict[str, int] = {}
    for run in s.runs:
        kinds[run.kind] = kinds.get(run.kind, 0) + 1
    info = {"url": _safe_url(ledger.url), "run_tree": run_tree, "runs_read": len(s.runs),
            "requests_read": len(s.requests), "runs_by_kind": kinds,
            "poor_runs": sorted(i for i, a in s.arms.items() if a == "poor"),
            "measurements": [m.to_dict() for m in measurements], "notes": s.notes}
    return measurements, info
