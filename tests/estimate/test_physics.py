"""Levers and estimates that respect the interconnect: data-parallel traffic against compute per step."""

from __future__ import annotations

import pytest

from truecost.estimate.parallelism import data_parallel_traffic_bytes, link_bandwidth_gb_s
from truecost.estimate.training import estimate_training, make_spec


def test_traffic_volume_follows_the_ring_collectives() -> None:
    # ZeRO-3: 2 all-gathers of 16-bit weights + 1 reduce-scatter of gradients, times (dp-1)/dp
    assert data_parallel_traffic_bytes(7e9, 7e9, zero=3, dp=4, model_parallel=1) == pytest.approx(3 * 14e9 * 3 / 4)
    assert data_parallel_traffic_bytes(7e9, 7e9, zero=1, dp=4, model_parallel=1) == pytest.approx(2 * 14e9 * 3 / 4)
    assert data_parallel_traffic_bytes(7e9, 7e9, zero=3, dp=1, model_parallel=1) == 0
    assert link_bandwidth_gb_s(8, 900, 50) == 450 and link_bandwidth_gb_s(16, 900, 50) == 50


def test_no_pcie_lever_for_a_256_gpu_pretraining_run_and_wall_time_shown() -> None:
    spec = make_spec(params=7e9, tokens=2e12, gpu="H100 SXM", gpus=256)
    est = estimate_training(spec)
    assert est.interconnect == "nvlink" and est.communication is not None and est.communication.bound == "compute"
    names = [lever.name for lever in est.levers]
    assert "use L40S instead" not in names
    l40s = estimate_training(spec.model_copy(update={"gpu": "L40S"}), with_levers=False)
    assert l40s.communication is not None and l40s.communication.bound == "interconnect"
    assert "interconnect-bound" in l40s.assumptions["interconnect"]
    gpu_levers = [lever for lever in est.levers if lever.name.startswith("use ")]
    for lever in gpu_levers:
        assert "wall time" in lever.note and " h vs " in lever.note


def test_a_single_server_job_may_move_to_pcie_cards() -> None:
    est = estimate_training(make_spec(params=1e9, tokens=2e10, gpu="H100 SXM", gpus=8))
    assert est.communication is not None and est.communication.bound == "compute"
    assert any(lever.name == "use L40S instead" for lever in est.levers)


def test_h100_vs_a100_answer_has_wall_time_and_interconnect() -> None:
    h100 = estimate_training(make_spec(params=7e9, tokens=2e12, gpu="H100 SXM", gpus=256), with_levers=False)
    a100 = estimate_training(make_spec(params=7e9, tokens=2e12, gpu="A100 80GB", gpus=256), with_levers=False)
    print(f"H100: MFU {h100.mfu:.1%} wall {h100.wall_hours['p50']:.0f} h ${h100.cost_usd['p50']:,.0f}; "
          f"A100: MFU {a100.mfu:.1%} wall {a100.wall_hours['p50']:.0f} h ${a100.cost_usd['p50']:,.0f}")
    assert h100.wall_hours["p50"] < a100.wall_hours["p50"]
    for est in (h100, a100):
        doc = est.to_dict()
        assert doc["interconnect"] == "nvlink" and doc["communication"]["bound"] == "compute"
