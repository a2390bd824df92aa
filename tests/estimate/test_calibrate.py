"""`estimate calibrate`: offsets learned from real ledger runs (a real SQLite `Ledger`, runs recorded through its
`Meter` with the keys the train loop records), and the organisation-grouped check on published runs."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from truecost.estimate.calibration import ALL_GPUS, load_priors
from truecost.estimate.training import estimate_training, make_spec
from truecost.estimate.user_calibration import MeasuredRun, calibrate_from_ledger, prior_strength, shrunk_offsets
from truecost.ledger import Ledger

PLAN = {"max_steps": 100, "micro_batch": 4, "grad_accum": 2, "seq_len": 512}
PLANNED_TOKENS = 100 * 4 * 2 * 512 * 8  # x world_size 8


def _train_run(ledger: Ledger, gpu: str, factor: float, *, status: str = "completed", start_step: int = 0) -> str:
    """A train run as the train loop records it (no GPU here, so its figures are written, not measured): the plan
    in params.config, the pre-flight estimate's GPU, and device-hours estimated vs measured; utilisation came out
    at `factor` x the prior's."""
    estimated = 10.0
    with ledger.run("train", f"{gpu} run", params={"config": PLAN, "world_size": 8,
                                                   "estimate": {"gpu": gpu, "gpu_hours": estimated}}) as run:
        run.tokens = PLANNED_TOKENS
        run.results.update({"start_step": start_step, "measured_vs_estimate": {
            "device_hours": {"estimated": estimated, "measured": estimated / factor}}})
    if status != "completed":
        record = ledger.get_run(run.id)
        ledger.finish_run(record, status)
    return run.id


def test_calibration_reads_ledger_runs_shrinks_and_moves_the_estimate(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    used = [_train_run(ledger, "A100 80GB", 0.6) for _ in range(3)]
    skipped = [_train_run(ledger, "cpu", 0.6), _train_run(ledger, "A100 80GB", 0.6, start_step=50),
               _train_run(ledger, "A100 80GB", 0.6, status="failed")]
    priors = load_priors()
    result = calibrate_from_ledger(ledger, priors)
    assert sorted(r.run_id for r in result.runs) == sorted(used)
    assert set(result.skipped) == set(skipped)
    # normal-normal posterior mean, computed independently: n * ln(0.6) / (n + k)
    k = (priors.run_sd / priors.organisation_sd) ** 2
    overall = 3 * math.log(0.6) / (3 + k)
    assert result.offsets[ALL_GPUS] == pytest.approx(overall)
    assert result.offsets["A100 80GB"] == pytest.approx(overall + 3 * (math.log(0.6) - overall) / (3 + k))
    # fewer runs than the prior's strength move the estimate part of the way, never past the measurement
    assert math.log(0.6) < result.offsets["A100 80GB"] < 0
    path = tmp_path / "truecost-priors.json"
    path.write_text(json.dumps(result.to_dict()))
    spec = make_spec(params=7e9, tokens=1e11, gpu="A100 80GB", gpus=8)
    before = estimate_training(spec, priors=priors, with_levers=False).gpu_hours["p50"]
    after = estimate_training(spec, priors=load_priors(path), with_levers=False).gpu_hours["p50"]
    assert after / before == pytest.approx(math.exp(-result.offsets["A100 80GB"]), rel=1e-6)


def test_many_runs_outweigh_the_prior() -> None:
    strength = prior_strength(load_priors())
    runs = [MeasuredRun(f"r{i}", "H100 SXM", 8, math.log(0.5)) for i in range(int(50 * strength) + 50)]
    assert shrunk_offsets(runs, strength)["H100 SXM"] == pytest.approx(math.log(0.5), abs=0.02)


def test_calibrate_command_writes_the_file_estimate_train_reads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url)
    _train_run(ledger, "H100 SXM", 0.5)
    run = [sys.executable, "-m", "truecost"]
    done = subprocess.run([*run, "--ledger", url, "estimate", "calibrate", "--json"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["calibration"]["runs"] == 1 and (tmp_path / "truecost-priors.json").is_file()
    args = ["estimate", "train", "--params", "7B", "--tokens", "1e11", "--gpu", "H100", "--gpus", "8", "--json"]
    calibrated = json.loads(subprocess.run([*run, *args], capture_output=True, text=True, cwd=tmp_path,
                                           timeout=300).stdout)
    (tmp_path / "truecost-priors.json").unlink()
    shipped = json.loads(subprocess.run([*run, *args], capture_output=True, text=True, cwd=tmp_path,
                                        timeout=300).stdout)
    assert calibrated["gpu_hours"]["p50"] > shipped["gpu_hours"]["p50"]


def _sequential_errors(shared_data: Path) -> tuple[list[float], list[float]]:
    """For each organisation: prior fitted without it (grouped), calibrated on its runs published before each later
    one; |GPU-hours error| of the later runs before and after."""
    pytest.importorskip("scipy")
    from truecost.estimate.fitting import CANDIDATES, grouped_residuals
    from truecost.estimate.runs import observe, read_runs

    path = shared_data / "published_runs" / "runs.csv"
    if not path.exists():
        pytest.skip("no shared published_runs/runs.csv")
    priors = load_priors()
    obs = [observe(run, priors) for run in read_runs(path)]
    pairs = grouped_residuals(obs, CANDIDATES["hardware"])
    strength = prior_strength(priors)
    before, after = [], []
    for org in sorted({o.run.organisation for o, _ in pairs}):
        mine = sorted(((o, r) for o, r in pairs if o.run.organisation == org), key=lambda p: p[0].run.published)
        for o, r in mine:
            earlier = [MeasuredRun(p.run.model, p.shape.gpu, 1, q) for p, q in mine
                       if p.run.published < o.run.published]
            if not earlier:
                continue
            offsets = shrunk_offsets(earlier, strength)
            offset = offsets.get(o.shape.gpu, offsets[ALL_GPUS])
            before.append(abs(math.exp(r) - 1))
            after.append(abs(math.exp(r - offset) - 1))
    print(f"later runs n={len(before)}: mean |error| before {statistics.fmean(before):.1%}, after "
          f"{statistics.fmean(after):.1%} (prior strength {strength:.1f} runs)")
    return before, after


def test_calibrating_on_an_organisations_earlier_runs_does_little_harm(shared_data: Path) -> None:
    before, after = _sequential_errors(shared_data)
    assert len(before) >= 6
    assert statistics.fmean(after) <= statistics.fmean(before) + 0.03


@pytest.mark.xfail(strict=True, reason="null result on the published runs: organisations change their stack between "
                                       "releases (OPT 2022 -> LLaMA 2023 -> Llama 3 2024), so earlier runs do not "
                                       "predict later ones better than the cross-organisation model")
def test_calibrating_on_an_organisations_earlier_runs_improves_its_later_ones(shared_data: Path) -> None:
    before, after = _sequential_errors(shared_data)
    assert statistics.fmean(after) < statistics.fmean(before)
