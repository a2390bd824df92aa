"""`truecost estimate ...` and `truecost gpus` as a user runs them: real subprocess, JSON shape, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TRAIN_FIELDS = {"params_total", "params_active", "flops", "gpu_hours", "wall_hours", "cost_usd", "energy_kwh",
                "co2_kg", "memory_per_gpu_gib", "fits_in_memory", "levers"}


def truecost(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "truecost", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=env)


def _json(*args: str) -> dict:
    result = truecost(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _check_training_json(data: dict) -> None:
    assert set(data) >= TRAIN_FIELDS
    for key in ("gpu_hours", "wall_hours", "cost_usd", "energy_kwh", "co2_kg"):
        q = data[key]
        assert set(q) == {"p10", "p50", "p90"} and 0 < q["p10"] < q["p50"] < q["p90"]
    assert set(data["memory_per_gpu_gib"]) == {"weights", "gradients", "optimizer", "activations", "other", "total"}
    assert isinstance(data["fits_in_memory"], bool)
    assert data["levers"] and all(set(lv) == {"name", "saving_usd", "note", "basis"} for lv in data["levers"])
    # A lever is the estimate re-run (sourced) or rests on a named default (assumed); none is measured.
    assert {lv["basis"] for lv in data["levers"]} <= {"sourced", "assumed"}
    savings = [lv["saving_usd"] for lv in data["levers"]]
    assert savings == sorted(savings, reverse=True)


def test_estimate_without_subcommand_prints_the_target_plan() -> None:
    data = _json("estimate")
    _check_training_json(data)
    assert data["model"] == "llama-2-7b"
    human = truecost("estimate")
    assert human.returncode == 0 and "GPU-hours" in human.stdout


def test_estimate_train_json_has_every_field() -> None:
    data = _json("estimate", "train", "--model", "llama-3-8b", "--tokens", "15T", "--gpu", "H100", "--gpus", "1024",
                 "--tp", "2")
    _check_training_json(data)
    assert data["params_total"] == 8030261248 and data["gpus"] == 1024


def test_params_and_config_paths(tmp_path: Path) -> None:
    data = _json("estimate", "train", "--params", "46.7B", "--active-params", "12.9B", "--tokens", "1e12")
    assert data["params_total"] == 46_700_000_000 and data["params_active"] == 12_900_000_000
    config = tmp_path / "config.json"
    from truecost.estimate.catalogue import models

    config.write_text(json.dumps(models()["qwen2.5-7b"].config))
    data = _json("estimate", "train", "--model-config", str(config), "--tokens", "1B", "--method", "qlora")
    assert data["params_total"] == 7615616512 and data["params_trainable"] < 1e8


@pytest.mark.parametrize("args, fragment", [
    (["estimate", "train", "--gpu", "Z9000"], "unknown GPU 'Z9000'; choose one of: V100"),
    (["estimate", "train", "--tokens", "-5"], "must be positive"),
    (["estimate", "train", "--model", "gpt-17"], "unknown model 'gpt-17'; choose one of: bloom-176b"),
    (["estimate", "train", "--model", "llama-2-7b", "--params", "7B"], "only one of"),
    (["estimate", "train", "--method", "dora"], "method"),
    (["estimate", "train", "--gpu", "V100", "--precision", "bf16"], "no bf16 tensor support"),
    (["estimate", "train", "--gpu", "B200"], "no catalogued on-demand price for B200"),
    (["estimate", "serve", "--api-model", "nope"], "no price for API model 'nope'; choose one of"),
    (["estimate", "size"], "exactly one of --budget-usd and --compute"),
    (["estimate", "tco", "--set", "bogus=1"], "unknown TCO input 'bogus'"),
])
def test_user_mistakes_are_one_clear_line(args: list[str], fragment: str) -> None:
    result = truecost(*args)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_size_serve_tco_and_gpus_json() -> None:
    size = _json("estimate", "size", "--budget-usd", "1e6", "--gpu", "H100")
    opt = size["compute_optimal"]
    assert 15 < opt["tokens_per_param"] < 25 and opt["cost_usd"] == pytest.approx(1e6, rel=0.01)
    serve = _json("estimate", "serve", "--model", "llama-3.1-8b", "--gpu", "L4", "--api-model", "gpt-4o-mini")
    assert serve["gpus"] >= 1 and serve["usd_per_1m_tokens"] > 0 and serve["api"]["usd_per_month"] > 0
    tco = _json("estimate", "tco", "--set", "poor.retrains_per_year=24")
    assert tco["poor"]["total_usd"] > tco["well"]["total_usd"]
    assert all({"name", "well", "poor", "unit", "reason"} <= set(a) for a in tco["assumptions"])
    gpus = json.loads(truecost("gpus", "--json").stdout)
    names = {g["name"] for g in gpus}
    for required in ("V100 SXM2 32GB", "T4", "A10G", "L4", "L40S", "A100 40GB", "A100 80GB", "H100 SXM", "H100 PCIe",
                     "H800", "H200", "B200", "MI300X"):
        assert required in names
    assert all(g["source"] and g["source_date"] for g in gpus)


def test_truecost_toml_overrides_gpus_and_api_prices(tmp_path: Path) -> None:
    (tmp_path / "truecost.toml").write_text(
        '[hardware]\ngpu = "B200"\nprice_per_gpu_hour = 5.0\n'
        '[[gpus]]\nname = "H100 SXM"\nmemory_gib = 96\n'
        '[[gpus]]\nname = "Z1"\nmemory_gib = 64\nbandwidth_gb_s = 2000\ntdp_w = 500\npeak_tflops_bf16 = 500\n'
        '[estimate.api_prices.my-model]\ninput_usd_per_1m = 1.0\noutput_usd_per_1m = 2.0\n')
    data = json.loads(truecost("estimate", "--json", cwd=tmp_path).stdout)
    assert data["gpu"] == "B200" and data["usd_per_gpu_hour"] == 5.0
    gpus = {g["name"]: g for g in json.loads(truecost("gpus", "--json", cwd=tmp_path).stdout)}
    assert gpus["H100 SXM"]["memory_gib"] == 96 and gpus["H100 SXM"]["peak_tflops"]["bf16"] == 989
    assert gpus["Z1"]["peak_tflops"] == {"bf16": 500}
    z1 = json.loads(truecost("estimate", "train", "--gpu", "Z1", "--json", cwd=tmp_path).stdout)
    assert z1["device_memory_gib"] == 64
