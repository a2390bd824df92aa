"""The monitor: featurise each window once, let every detector score it, then decide in dollars.

    result = run_monitor("reference.jsonl", "current.jsonl", window=50)
    result.decision.action          # "retrain" | "watch" | "none"
    result.to_dict()                # the `--json` document
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from truecost.config import Config
from truecost.errors import UserError
from truecost.monitor.data import COLUMNS, cut_windows, load_records
from truecost.monitor.decision import Decision, Economics, decide, economics_from_config
from truecost.monitor.detectors import (
    Detector,
    InputDriftDetector,
    OpsDriftDetector,
    QualityDriftDetector,
    QualitySource,
    Signal,
)
from truecost.monitor.features import Featurizer
from truecost.monitor.settings import MonitorSettings, monitor_settings

if TYPE_CHECKING:
    import pandas as pd

    from truecost.ledger import Ledger

SIGNALS = ("input_drift", "quality_drift", "ops_drift")


@dataclass
class WindowResult:
    """Every detector's signal for one window."""

    index: int
    n: int
    signals: dict[str, Signal]
    start: str | None = None
    end: str | None = None
    cpu_seconds: float = 0.0

    @property
    def alarm(self) -> bool:
        """Whether any detector alarmed on this window."""
        return any(s.alarm for s in self.signals.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; a detector that had no data to judge reports `{"alarm": false, "active": false}`."""
        out: dict[str, Any] = {"index": self.index, "n": self.n}
        if self.start is not None:
            out["start"], out["end"] = self.start, self.end
        for name in SIGNALS:
            out[name] = self.signals[name].to_dict() if name in self.signals else {"alarm": False, "active": False}
        out["cpu_seconds"] = round(self.cpu_seconds, 4)
        return out


@dataclass
class MonitorResult:
    """The windows, the decision and the settings that produced them."""

    windows: list[WindowResult]
    decision: Decision
    reference_rows: int
    settings: dict[str, Any] = field(default_factory=dict)
    detectors: dict[str, Any] = field(default_factory=dict)
    reference_feature_rows: int | None = None
    # Non-finite numbers (inf, -inf) emptied on reading, by column: counted, never judged, never printed.
    dropped_non_finite: dict[str, int] = field(default_factory=dict)
    run_id: str | None = None  # the ledger run that recorded it (None without a ledger)

    @property
    def alarms(self) -> list[int]:
        """Indices of windows where any detector alarmed."""
        return [w.index for w in self.windows if w.alarm]

    def first_alarm(self, signal: str | None = None) -> int | None:
        """The first window where `signal` (or any signal) alarmed."""
        for w in self.windows:
            if (w.signals[signal].alarm if signal in w.signals else False) if signal else w.alarm:
                return w.index
        return None

    def to_dict(self) -> dict[str, Any]:
        """The `truecost monitor --json` document."""
        return {"windows": [w.to_dict() for w in self.windows], "decision": self.decision.to_dict(),
                "first_alarm": {name: self.first_alarm(name) for name in SIGNALS},
                "reference_rows": self.reference_rows, "reference_feature_rows": self.reference_feature_rows,
                "dropped_non_finite": dict(self.dropped_non_finite), "detectors": self.detectors,
                "settings": self.settings}


class Monitor:
    """Fit on a reference, `update` with windows as they come, `decision()` whenever asked."""

    def __init__(self, settings: MonitorSettings | None = None, config: Config | None = None) -> None:
        self.settings = settings or MonitorSettings()
        self.config = config or Config()

    def fit(self, reference: pd.DataFrame, *, horizon_windows: int, window_rows: int,
            current_has_labels: bool | None = None, current_has_ops: bool | None = None) -> Monitor:
        """Featurise the reference, choose which detectors can run, split the false-alarm budget among them."""
        s = self.settings
        if len(reference) < 20:
            raise UserError(f"the reference has {len(reference)} rows; at least 20 are needed")
        # Text features of a seeded sample of a large reference: the kernel tests use `max_reference` rows anyway,
        # and the K-S/chi-square tests gain nothing from millions; quality and ops values are all kept.
        sample = _sample_rows(reference, s.max_reference_features, s.seed)
        self.featurizer_ = Featurizer(s.embedder, s.seed).fit(sample)
        ref_batch = self.featurizer_.transform(sample)
        ref_batch.frame = reference
        self.reference_feature_rows_ = len(sample)
        ref_labels = int(reference["quality"].notna().sum()) >= 10
        labels = ref_labels and (current_has_labels if current_has_labels is not None else True)
        ref_ops = bool(reference["latency_ms"].notna().sum() >= 20 or reference["cost_usd"].notna().sum() >= 2)
        ops = ref_ops and (current_has_ops if current_has_ops is not None else True)
        source: QualitySource = "labels" if labels else "ood_proxy"
        # Bonferroni across detectors: the stream-wide false-alarm budget is shared by those that run.
        alpha = s.false_alarm_rate / (3 if ops else 2)
        self.detectors_: dict[str, Detector] = {
            "input_drift": InputDriftDetector(alpha, s.permutations, s.max_reference, s.seed),
            "quality_drift": QualityDriftDetector(alpha, s.quality_shift, source, s.max_reference, s.seed + 1),
        }
        if ops:
            self.detectors_["ops_drift"] = OpsDriftDetector(alpha, s.ops_min_increase)
        for detector in self.detectors_.values():
            detector.fit(ref_batch, horizon_windows, window_rows)
        self.economics_: Economics = economics_from_config(self.config, s)
        self.windows_: list[WindowResult] = []
        self.reference_rows_ = len(reference)
        self.window_rows_ = window_rows
        return self

    def update(self, window: pd.DataFrame) -> WindowResult:
        """Score the next window with every detector (features computed once)."""
        cpu0 = time.process_time()
        batch = self.featurizer_.transform(window)
        signals = {name: det.score(batch) for name, det in self.detectors_.items()}
        stamps = window["timestamp"].dropna()
        result = WindowResult(index=len(self.windows_), n=len(window), signals=signals,
                              start=stamps.min().isoformat() if len(stamps) else None,
                              end=stamps.max().isoformat() if len(stamps) else None,
                              cpu_seconds=time.process_time() - cpu0)
        self.windows_.append(result)
        return result

    def decision(self) -> Decision:
        """The retrain decision from everything seen so far."""
        quality = self.detectors_["quality_drift"]
        assert isinstance(quality, QualityDriftDetector)
        drop, se, rows, basis = quality.estimate_drop(self.settings.min_rows_after_alarm or self.window_rows_)
        first = next((w.index for w in self.windows_ if w.alarm), None)
        # Only a drop measured after the alarm can buy a retrain; a fresher alarm means "watch" for now.
        confirmed = quality.alarm_index_ is not None and basis == "after_alarm"
        decision = decide(drop, se, confirmed, first, self.economics_, self.settings.decision_confidence,
                          quality.source, drop_basis=basis, drop_rows=rows)
        if not self.windows_:  # a zero loss over no traffic is not a finding
            decision.reason = "nothing scored yet: no window of requests has been seen, so no drift could be judged"
            decision.quality_drop_basis = "no_windows"
        return decision

    def result(self) -> MonitorResult:
        """Windows so far and the decision, as one result."""
        detectors = {name: {"class": type(d).__name__, "alpha": d.alpha} for name, d in self.detectors_.items()}
        quality = self.detectors_["quality_drift"]
        assert isinstance(quality, QualityDriftDetector)
        detectors["quality_drift"].update(source=quality.source, threshold=quality.threshold_,
                                          reference_mean=quality.target_)
        return MonitorResult(windows=list(self.windows_), decision=self.decision(),
                             reference_rows=self.reference_rows_, settings=self.settings.model_dump(),
                             detectors=detectors, reference_feature_rows=self.reference_feature_rows_)


def _sample_rows(frame: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """At most `limit` rows of `frame`, drawn without replacement with `seed`, in their original order."""
    if len(frame) <= limit:
        return frame
    import numpy as np

    keep = np.sort(np.random.default_rng(seed).choice(len(frame), limit, replace=False))
    return frame.iloc[keep].reset_index(drop=True)


def run_monitor(reference: Any, current: Any, window: int | None = None, every: str | None = None,
                config: Config | None = None, columns: Mapping[str, str] | None = None,
                ledger: Ledger | None = None, source_ledger: Ledger | None = None,
                reference_columns: Mapping[str, str] | None = None, current_columns: Mapping[str, str] | None = None,
                parent_id: str | None = None, **settings: Any) -> MonitorResult:
    """Monitor `current` against `reference`: per-window drift signals and the retrain decision.

    `reference`/`current`: a path (.jsonl/.parquet/.csv), a DataFrame, a list of dicts, or `ledger:SINCE..UNTIL`.
    `window` rows per window, or `every` (e.g. "1h") by timestamp; `settings` override `[monitor]` keys of
    `config` (None: the defaults; the library never reads ./truecost.toml itself), e.g.
    `value_of_quality_usd=0.002`. `columns` maps names in both sources, `reference_columns`/`current_columns` in
    one. With `ledger`, the run is recorded there (kind "monitor", under `parent_id` when given) with its decision;
    `ledger:` sources are read from `source_ledger` (default: `ledger`).
    """
    cfg = config if config is not None else Config()
    s = monitor_settings(cfg, window=window, every=every, **settings)
    shared = {**s.columns, **(columns or {})}
    source_ledger = source_ledger or ledger
    dropped: dict[str, int] = {}
    ref_frame = load_records(reference, {**shared, **(reference_columns or {})}, ledger=source_ledger,
                             dropped=dropped)
    cur_frame = load_records(current, {**shared, **(current_columns or {})}, ledger=source_ledger, dropped=dropped)
    if len(cur_frame) == 0:
        raise UserError("the current stream is empty")
    windows = cut_windows(cur_frame, s.window, s.every)
    window_rows = max(len(w) for w in windows)
    has_labels = int(cur_frame["quality"].notna().sum()) > 0
    has_ops = bool(cur_frame["latency_ms"].notna().any() or cur_frame["cost_usd"].notna().any())

    def _run() -> MonitorResult:
        monitor = Monitor(s, cfg).fit(ref_frame, horizon_windows=len(windows), window_rows=window_rows,
                                      current_has_labels=has_labels, current_has_ops=has_ops)
        for part in windows:
            monitor.update(part)
        result = monitor.result()
        result.dropped_non_finite = dropped
        return result

    if ledger is None:
        return _run()
    params = {"reference": _describe(reference), "current": _describe(current), "window": s.window,
              "every": s.every, "embedder": s.embedder}
    with ledger.run("monitor", "monitor", params=params, prices=cfg.compute_prices(), parent_id=parent_id) as run:
        result = _run()
        record_results(run.results, result)
    result.run_id = run.id
    return result


def _describe(source: Any) -> str:
    return str(source) if isinstance(source, str | Path) else type(source).__name__


def record_results(results: dict[str, Any], result: MonitorResult) -> None:
    """What a monitor run leaves in its ledger record: windows, alarms and the decision with its dollars."""
    decision = result.decision.to_dict()
    starts = [w.start for w in result.windows if w.start is not None]
    ends = [w.end for w in result.windows if w.end is not None]
    # The period the traffic spans: the TCO turns retrain decisions into retrains per year with it.
    results.update(observed_start=min(starts) if starts else None, observed_end=max(ends) if ends else None)
    results.update(windows=len(result.windows), alarm_windows=result.alarms,
                   first_alarm={name: result.first_alarm(name) for name in SIGNALS},
                   action=decision["action"], expected_loss_usd=decision["expected_loss_usd"],
                   retrain_cost_usd=decision["retrain_cost_usd"], quality_drop=decision["quality_drop"],
                   quality_source=decision["quality_source"], reference_rows=result.reference_rows,
                   dropped_non_finite=dict(result.dropped_non_finite))


__all__ = ["COLUMNS", "Monitor", "MonitorResult", "WindowResult", "record_results", "run_monitor"]
