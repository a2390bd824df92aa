"""Pre-flight through the estimate module: refuse what cannot fit, turn on checkpointing when that fits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.conftest import tiny
from truecost.config import Config
from truecost.errors import UserError
from truecost.estimate.training import TrainingSpec, estimate_training
from truecost.train import train
from truecost.train.plan import plan
from truecost.train.preflight import preflight, shape_of_config

BIG = {"architecture": {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
                        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
                        "vocab_size": 32000}}


def test_a_run_that_cannot_fit_is_refused_with_levers_before_any_work(tmp_path: Path) -> None:
    config = tiny(tmp_path, model=BIG, seq_len=2048, micro_batch=8, precision="bf16",
                  hardware={"device_memory_gib": 24})
    with pytest.raises(UserError) as info:
        train(config)
    message = str(info.value)
    assert message.startswith("pre-flight:") and "24.00 GiB" in message
    assert "method: lora" in message  # a 7B full fine-tune needs >100 GiB; LoRA is the lever that fits
    assert not (tmp_path / "runs").exists()  # nothing was read, built or written


def test_checkpointing_is_turned_on_when_only_that_makes_it_fit(tmp_path: Path) -> None:
    deep = {"architecture": {"num_hidden_layers": 4, "hidden_size": 64, "intermediate_size": 128,
                             "num_attention_heads": 2}}
    config = tiny(tmp_path, model=deep, seq_len=128, micro_batch=64, max_steps=2)

    def needed_gib(recompute: str) -> float:
        # the same run described to the estimate directly, without the pre-flight's code
        from truecost.estimate.architecture import architecture_from_hf_config

        arch = architecture_from_hf_config({**config.model.architecture, "vocab_size": 512})
        spec = TrainingSpec(architecture=arch, tokens=1e6, gpu="cpu", gpus=os.cpu_count() or 1, precision="fp32",
                            method="full", seq_len=128, micro_batch=64, zero=0, recompute=recompute,
                            device_memory_gib=1000, price_per_gpu_hour=0.05)
        return estimate_training(spec, with_levers=False).memory.total

    without, with_recompute = needed_gib("none"), needed_gib("full")
    assert with_recompute < without
    between = (without + with_recompute) / 2
    config = tiny(tmp_path, model=deep, seq_len=128, micro_batch=64, max_steps=2,
                  eval={"every_steps": 2, "batches": 1}, hardware={"device_memory_gib": between, "threads": 1})
    check = preflight(shape_of_config(config, device="cpu"), Config(), config.gradient_checkpointing)
    assert check.fits and check.recompute
    assert check.memory_gib == pytest.approx(with_recompute, rel=1e-3)
    result = train(config)
    assert result.gradient_checkpointing and result.steps == 2

    with pytest.raises(UserError, match="pre-flight"):
        train(tiny(tmp_path, model=deep, seq_len=128, micro_batch=64, gradient_checkpointing="off",
                   hardware={"device_memory_gib": between}))


def test_plan_lists_the_cheapest_variant_that_fits(tmp_path: Path) -> None:
    config = tiny(tmp_path, model=BIG, seq_len=2048, micro_batch=8, precision="bf16",
                  hardware={"device_memory_gib": 24})
    result = plan(config, project=Config(), device="cpu")
    assert not result.as_configured.fits and result.would_run is None
    assert result.cheapest is not None and result.cheapest.fits
    assert result.cheapest.memory_gib <= 24
    assert all(row.cost_usd >= result.cheapest.cost_usd for row in result.alternatives)


def test_cli_plan_json(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("max_steps: 10\n")
    result = subprocess.run([sys.executable, "-m", "truecost", "train", "--plan", str(config), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["as_configured"]["fits"] and data["cheapest"]["cost_usd"] > 0
    assert not (tmp_path / "runs").exists()  # planning trains nothing
