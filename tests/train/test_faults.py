"""Checkpoints under attack and accident: a hostile pickle runs nothing, damage is one line naming the file,
non-finite weights fail the run, and kill -9 loses at most one checkpoint interval and none of its spend."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.train.conftest import TINY, tiny
from truecost.errors import UserError
from truecost.train import train
from truecost.train.checkpoints import seal, verify

CHECKPOINT = {"every_steps": 5, "every_minutes": None, "keep": 2}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run whose last checkpoint is checkpoint-10 (built once, copied by each test)."""
    root = tmp_path_factory.mktemp("trained")
    train(tiny(root, name="base", max_steps=10, checkpoint=CHECKPOINT))
    assert sorted(p.name for p in (root / "runs" / "base").glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-5"]
    return root / "runs" / "base"


def _copy(trained: Path, tmp_path: Path) -> tuple[Any, Path]:
    shutil.copytree(trained, tmp_path / "runs" / "base")
    config = tiny(tmp_path, name="base", max_steps=20, checkpoint=CHECKPOINT)
    return config, tmp_path / "runs" / "base" / "checkpoint-10"


class Payload:
    """Unpickling this runs a shell command: what a crafted checkpoint would do to `torch.load(weights_only=False)`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("file", ["optimizer.pt", "rng_state.pth"])
def test_a_malicious_pickle_in_a_checkpoint_runs_nothing(trained: Path, tmp_path: Path, file: str) -> None:
    config, folder = _copy(trained, tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"state": Payload(marker)}, folder / file)
    seal(folder)  # even with checksums that match (an attacker writes those too), nothing may execute
    with pytest.raises(UserError, match=rf"checkpoint file .*{file} cannot be loaded safely") as info:
        train(config, resume=True)
    assert "\n" not in str(info.value)
    assert not marker.exists()


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "random":
        path.write_bytes(os.urandom(len(data)))
    else:  # 50 flipped bytes in the middle of the tensors
        flipped = bytearray(data)
        for i in range(len(data) // 2, len(data) // 2 + 50):
            flipped[i] ^= 0xFF
        path.write_bytes(bytes(flipped))


@pytest.mark.parametrize(("file", "how"), [("model.safetensors", "flipped"), ("model.safetensors", "truncated"),
                                           ("optimizer.pt", "empty"), ("scheduler.pt", "random"),
                                           ("trainer_state.json", "truncated")])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(trained: Path, tmp_path: Path, file: str, how: str) -> None:
    config, folder = _copy(trained, tmp_path)
    _damage(folder / file, how)
    with pytest.raises(UserError, match=rf"checkpoint file \S*{file} does not match the checksum"):
        train(config, resume=True)
    if how != "flipped":  # resealed, the damage is still caught when the file is opened (safely)
        seal(folder)
        with pytest.raises(UserError, match=rf"checkpoint file \S*{file} cannot be loaded safely"):
            verify(folder)


def test_cli_resume_from_a_damaged_checkpoint_exits_2_with_one_line(trained: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from truecost.cli.main import main

    _, folder = _copy(trained, tmp_path)
    _damage(folder / "optimizer.pt", "random")
    seal(folder)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**TINY, "name": "base", "output_dir": str(tmp_path / "runs" / "{name}")}))
    monkeypatch.setattr(sys, "argv", ["truecost", "train", str(config), "--resume"])
    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "optimizer.pt" in lines[0] and "Traceback" not in err, err


def test_non_finite_weights_after_resume_fail_the_run_and_keep_the_good_checkpoint(trained: Path, tmp_path: Path,
                                                                                   ledger: Any) -> None:
    from safetensors.torch import load_file, save_file

    config, folder = _copy(trained, tmp_path)
    weights = load_file(str(folder / "model.safetensors"))
    nan = {name: torch.full_like(t, float("nan")) for name, t in weights.items()}
    save_file(nan, str(folder / "model.safetensors"), metadata={"format": "pt"})
    seal(folder)  # a whole, well-formed checkpoint of a run that had diverged
    result = train(config, resume=True, ledger=ledger)
    assert result.status == "failed" and result.stopped_by == "non_finite"
    assert ledger.get_run(result.run_id).status == "failed"
    verify(folder)  # untouched: nothing non-finite was saved over it, and nothing newer was written
    assert sorted(p.name for p in folder.parent.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-5"]
    assert not (folder.parent / "model" / "model.safetensors").stat().st_mtime > (folder / "_COMPLETE").stat().st_mtime


@pytest.mark.slow
def test_kill_9_loses_at_most_one_interval_and_its_spend_counts_on_resume(tmp_path: Path) -> None:
    import yaml

    from truecost.ledger import Ledger

    settings = {**TINY, "name": "k", "output_dir": str(tmp_path / "runs" / "{name}"), "max_steps": 400,
                "log_every": 1, "checkpoint": CHECKPOINT}
    (tmp_path / "k.yaml").write_text(yaml.safe_dump(settings))
    log = (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "truecost", "train", "k.yaml"], cwd=tmp_path, stderr=log,
                            stdout=subprocess.DEVNULL)
    run_dir = tmp_path / "runs" / "k"
    deadline = time.monotonic() + 240
    while not (run_dir / "checkpoint-15" / "_COMPLETE").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint-15 before the run ended"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    log.close()
    trained_steps = [int(line.split()[1].rstrip(":")) for line in (tmp_path / "stderr.txt").read_text().splitlines()
                     if line.startswith("step ") and "train loss" in line]
    killed_at = max(trained_steps)

    ledger = Ledger(f"sqlite:///{tmp_path / '.truecost' / 'ledger.db'}")
    (killed,) = ledger.list_runs(kind="train")
    assert killed.status in ("running", "lost") and killed.cost_usd > 0 and killed.cpu_seconds > 0

    # Spend of the killed process counts against the budget: a budget below it trains nothing.
    config = tiny(tmp_path, name="k", max_steps=killed_at + 6, checkpoint=CHECKPOINT)
    capped = train(config.model_copy(update={"budget": config.budget.model_copy(
        update={"max_usd": killed.cost_usd * 0.9})}), resume=True, ledger=ledger)
    assert capped.stopped_by == "budget" and capped.steps == capped.start_step
    assert killed.id in capped.previous_run_ids

    resumed = train(config, resume=True, ledger=ledger)
    assert killed_at - CHECKPOINT["every_steps"] <= resumed.start_step <= killed_at  # at most one interval lost
    assert resumed.steps == killed_at + 6 and resumed.status == "completed"
    assert resumed.previous_run_ids[0] == killed.id
    sessions = [ledger.get_run(i) for i in [*resumed.previous_run_ids, resumed.run_id]]
    assert resumed.cost_usd >= sum(run.cost_usd for run in sessions) * 0.999  # every session, the killed one too


def test_only_whole_checkpoints_count_and_an_old_one_goes_only_after_a_newer_one_is_whole(tmp_path: Path) -> None:
    from truecost.outputs import mark_complete
    from truecost.train.checkpoints import prune, resume_point

    for step in (10, 20, 30, 40):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    for step in (10, 30):  # 20 was cut short; 40 is being written (or was, when the process was killed)
        seal(tmp_path / f"checkpoint-{step}")
    assert [p.name for p in prune(tmp_path, keep=1)] == ["checkpoint-10", "checkpoint-20"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-30", "checkpoint-40"]
    assert resume_point(tmp_path).name == "checkpoint-30"  # the whole one, verified
    assert not (tmp_path / "checkpoint-40").exists()  # the cut-short write is cleared so the Trainer never sees it
    mark_complete(tmp_path / "checkpoint-30")  # a marker without checksums is not a truecost seal
    with pytest.raises(UserError, match="_COMPLETE is damaged"):
        resume_point(tmp_path)
