"""FSDP for real: two CPU processes on gloo, launched by torchrun, shard one model; the losses match a single
process, the pre-flight's per-process memory matches what FSDP holds, and the ledger has one run for the job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.conftest import TINY

# fp32 on both sides; the sums run in another order across two processes, nothing else differs.
LOSS_TOLERANCE = 1e-3

WORKER = '''
import json, os, sys
import torch
from transformers import TrainerCallback
from truecost.ledger import Ledger
from truecost.train import make_config, train


def local(t):
    return t.to_local() if hasattr(t, "to_local") else t


class Probe(TrainerCallback):
    """Bytes this process holds for weights, gradients and optimizer state, after the first optimizer step."""

    held = {}

    def on_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
        if self.held:
            return
        params = [p for p in model.parameters() if p.requires_grad]
        size = lambda ts: sum(local(t).numel() * local(t).element_size() for t in ts)
        moments = [v for s in getattr(optimizer, "optimizer", optimizer).state.values() for v in s.values()
                   if torch.is_tensor(v) and v.dim() > 0]
        self.held.update(weights=size(params), gradients=size(p.grad for p in params), optimizer=size(moments),
                         sharded=type(model).__name__)


rank = int(os.environ.get("RANK", "0"))
result = train(make_config(json.loads(sys.argv[1])), ledger=Ledger(sys.argv[2]) if rank == 0 else None,
               callbacks=[Probe()])
out = {"result": result.to_dict(), "held": Probe.held}
open(os.path.join(sys.argv[3], f"rank{rank}.json"), "w").write(json.dumps(out))
'''


def _losses(run_dir: Path) -> list[float]:
    (checkpoint,) = run_dir.glob("checkpoint-*")
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


@pytest.mark.slow
def test_fsdp_on_two_cpu_processes_matches_one_process(tmp_path: Path) -> None:
    base = {**TINY, "max_steps": 6, "log_every": 1, "eval": {"every_steps": 6, "batches": 2},
            "checkpoint": {"every_steps": None, "every_minutes": None}}
    sharded = {**base, "name": "fsdp", "micro_batch": 4, "distributed": {"strategy": "fsdp"},
               "output_dir": str(tmp_path / "runs" / "{name}")}
    single = {**base, "name": "one", "micro_batch": 8, "output_dir": str(tmp_path / "runs" / "{name}")}
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    proc = subprocess.run([*launch, str(script), json.dumps(sharded), url, str(tmp_path)], capture_output=True,
                          text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (tmp_path / "one").mkdir()
    proc = subprocess.run([sys.executable, str(script), json.dumps(single), f"sqlite:///{tmp_path / 'one.db'}",
                           str(tmp_path / "one")], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # Same global batch (2 x 4 = 8) in the same order: the same losses, step by step.
    fsdp_losses, one_losses = _losses(tmp_path / "runs" / "fsdp"), _losses(tmp_path / "runs" / "one")
    assert len(fsdp_losses) == len(one_losses) == 6
    assert fsdp_losses == pytest.approx(one_losses, abs=LOSS_TOLERANCE)

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    whole = json.loads((tmp_path / "one" / "rank0.json").read_text())["held"]
    assert all(r["held"]["sharded"].startswith("FSDP") for r in ranks)
    for rank in ranks:  # each process holds about half the states of the unsharded model
        held = rank["held"]
        for part in ("weights", "gradients", "optimizer"):
            assert held[part] == pytest.approx(whole[part] / 2, rel=0.1), part
    # the pre-flight's per-process estimate (ZeRO-3-style sharding over 2) against what FSDP held
    result = ranks[0]["result"]
    estimate = result["estimate"]["breakdown"]
    states_estimated = (estimate["weights"] + estimate["gradients"] + estimate["optimizer"]) * 2**30
    states_held = sum(ranks[0]["held"][p] for p in ("weights", "gradients", "optimizer"))
    assert states_held == pytest.approx(states_estimated, rel=0.1)

    from truecost.ledger import Ledger

    (run,) = Ledger(url).list_runs(kind="train")  # one run for the whole job
    assert result["world_size"] == 2 and result["strategy"] == "fsdp" and run.params["world_size"] == 2
    assert len({r["pid"] for r in run.results["ranks"]}) == 2
    assert run.cpu_seconds == pytest.approx(sum(r["cpu_seconds"] for r in run.results["ranks"]), rel=0.15)
    assert run.tokens == 6 * 8 * 64 and run.cost_usd > 0
