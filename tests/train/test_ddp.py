"""DDP for real: two CPU processes on the gloo backend, launched by torchrun, train one model in lockstep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.conftest import TINY


@pytest.mark.slow
def test_ddp_two_cpu_processes_on_gloo(tmp_path: Path) -> None:
    config = {**TINY, "max_steps": 6, "eval": {"every_steps": 3, "batches": 2},
              "output_dir": str(tmp_path / "runs" / "{name}")}
    script = tmp_path / "worker.py"
    script.write_text(
        "import hashlib, json, os, sys\n"
        "import torch\n"
        "from truecost.ledger import Ledger\n"
        "from truecost.train import make_config, train\n"
        "from truecost.train import loop\n"
        "captured = {}\n"
        "original = loop.build_model\n"
        "def keep(*args, **kwargs):\n"
        "    captured['model'] = original(*args, **kwargs)\n"
        "    return captured['model']\n"
        "loop.build_model = keep\n"
        "rank = int(os.environ['RANK'])\n"
        "result = train(make_config(json.loads(sys.argv[1])), ledger=Ledger(sys.argv[2]) if rank == 0 else None)\n"
        "digest = hashlib.sha256()\n"
        "for tensor in captured['model'].state_dict().values():\n"
        "    digest.update(tensor.detach().float().numpy().tobytes())\n"
        "out = {'rank': rank, 'weights': digest.hexdigest(), 'result': result.to_dict()}\n"
        "open(sys.argv[3] + f'/rank{rank}.json', 'w').write(json.dumps(out))\n")
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), json.dumps(config), ledger_url, str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights"] == ranks[1]["weights"]  # gradients were all-reduced every step
    result = ranks[0]["result"]
    assert result["world_size"] == 2 and result["steps"] == 6
    assert result["tokens"] == 6 * 64 * 8 * 2  # each rank sees its own micro-batch
    assert result["eval_loss_end"] < result["eval_loss_start"]

    from truecost.ledger import Ledger

    runs = Ledger(ledger_url).list_runs(kind="train")
    assert len(runs) == 1  # only rank 0 meters
    assert runs[0].params["world_size"] == 2 and runs[0].tokens == result["tokens"]
    assert runs[0].cost_usd > 0
