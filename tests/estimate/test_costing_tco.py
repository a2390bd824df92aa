"""The stable dollar functions other parts call, right-sizing, levers and the 12-month TCO."""

from __future__ import annotations

import pytest

from truecost.config import Config
from truecost.errors import UserError
from truecost.estimate import (
    ComputePrices,
    TrainingSpec,
    co2_kg,
    compute_cost_usd,
    compute_energy_kwh,
    estimate_training,
    retrain_cost_usd,
    token_price_usd,
    training_tokens_cost_usd,
)
from truecost.estimate.costing import target_spec
from truecost.estimate.sizing import chinchilla
from truecost.estimate.tco import tco


def test_training_dollars_follow_the_calibrated_p50() -> None:
    cfg = Config()
    p50 = estimate_training(target_spec(cfg), with_levers=False).cost_usd["p50"]
    assert retrain_cost_usd(cfg) == pytest.approx(p50)
    assert training_tokens_cost_usd(cfg.target.training_tokens / 4, cfg) == pytest.approx(p50 / 4)
    assert training_tokens_cost_usd(0, cfg) == 0


def test_token_prices_come_from_the_dated_catalogue_or_the_project_file() -> None:
    assert token_price_usd("gpt-4o-mini", 1_000_000, 0, Config()) == pytest.approx(0.15)
    assert token_price_usd("GPT-4o", 0, 1_000_000, Config()) == pytest.approx(10.0)
    assert token_price_usd("my-local-model", 10, 10, Config()) is None
    cfg = Config.model_validate({"estimate": {"api_prices": {"my-local-model": {"input": 1.0, "output": 3.0}}}})
    assert token_price_usd("my-local-model", 1_000_000, 1_000_000, cfg) == pytest.approx(4.0)
    bad = Config.model_validate({"estimate": {"api_prices": {"m": {"inputs": 1.0}}}})
    with pytest.raises(UserError, match=r"\[estimate\]"):
        token_price_usd("m", 1, 1, bad)


def test_metered_compute_pricing() -> None:
    prices = ComputePrices(cpu_usd_per_core_hour=0.05, gpu_usd_per_hour=2.0, gpu_watts=700, pue=1.2)
    assert compute_cost_usd(3600, 1.0, prices) == pytest.approx(2.05)
    energy = compute_energy_kwh(0, 1.0, prices)
    assert energy == pytest.approx(0.84) and co2_kg(energy, prices) == pytest.approx(0.84 * prices.grid_kg_co2_per_kwh)


def test_energy_is_gpu_hours_times_power_pue_and_grid() -> None:
    spec = TrainingSpec(model="llama-2-7b", tokens=1e9, gpu="A100", gpus=8, pue=1.5, grid_kg_co2_per_kwh=0.5,
                        power_utilisation=1.0)
    est = estimate_training(spec, with_levers=False)
    assert est.energy_kwh["p50"] == pytest.approx(est.gpu_hours["p50"] * 0.4 * 1.5)
    assert est.co2_kg["p50"] == pytest.approx(est.energy_kwh["p50"] * 0.5)


def test_chinchilla_optimum_is_about_20_tokens_per_parameter() -> None:
    law = chinchilla()
    params, tokens = law.compute_optimal(5.76e23)  # Chinchilla's own budget: 70B on 1.4T
    assert 40e9 < params < 90e9 and 15 < tokens / params < 25
    n, d = law.cheapest_same_loss(175e9, 300e9)  # GPT-3 was over-sized for its data
    assert n < 175e9 and n * d < 175e9 * 300e9


def test_levers_are_consistent_re_estimates() -> None:
    spec = TrainingSpec(model="llama-2-7b", tokens=2e12, gpu="H100", gpus=256, recompute="full")
    est = estimate_training(spec)
    names = {lever.name for lever in est.levers}
    assert {"spot instances", "fp8 training", "selective instead of full recompute",
            "de-duplicate the training data"} <= names
    fp8 = estimate_training(spec.model_copy(update={"precision": "fp8"}), with_levers=False)
    saving = next(lv.saving_usd for lv in est.levers if lv.name == "fp8 training")
    assert saving == pytest.approx(est.cost_usd["p50"] - fp8.cost_usd["p50"])


def test_tco_compares_well_and_poorly_prepared_projects() -> None:
    result = tco(Config())
    for side in ("well", "poor"):
        parts = result[side]
        assert set(parts) == {"training_usd", "retraining_usd", "serving_usd", "human_review_usd", "monitoring_usd",
                              "total_usd"}
        assert parts["total_usd"] == pytest.approx(sum(v for k, v in parts.items() if k != "total_usd"), abs=0.1)
    assert result["poor"]["total_usd"] > result["well"]["total_usd"]
    names = {a["name"] for a in result["assumptions"]}
    assert {"retrains_per_year", "duplicate_share", "utilisation_factor", "bad_output_rate"} <= names
    assert all(a["reason"] for a in result["assumptions"])


def test_tco_overrides_from_arguments_and_project_file() -> None:
    base = tco(Config())
    retrains = next(a for a in base["assumptions"] if a["name"] == "retrains_per_year")
    more = tco(Config(), {"poor.retrains_per_year": retrains["poor"] * 2})
    assert more["poor"]["retraining_usd"] == pytest.approx(2 * base["poor"]["retraining_usd"], rel=1e-6)
    assert more["well"] == base["well"]
    cfg = Config.model_validate({"estimate": {"tco": {"reviewer_usd_per_hour": 0, "well": {"bad_output_rate": 0}}}})
    free = tco(cfg)
    assert free["well"]["human_review_usd"] == 0 and free["poor"]["human_review_usd"] == 0
    with pytest.raises(UserError, match="unknown TCO input"):
        tco(Config(), {"nope": 1})
    with pytest.raises(UserError, match="non-negative"):
        tco(Config(), {"well.minutes_per_fix": -1})


def test_one_price_vocabulary_reads_old_names_with_a_warning() -> None:
    """Every file prices tokens as input_usd_per_1m/output_usd_per_1m; the old spellings still read, loudly."""
    import warnings

    from truecost.estimate.pricing import TokenPrice, token_cost_usd
    from truecost.estimate.settings import TokenPriceSetting

    new = TokenPriceSetting.model_validate({"input_usd_per_1m": 2.0, "output_usd_per_1m": 8.0})
    for old in ({"input": 2.0, "output": 8.0},
                {"prompt_usd_per_1m_tokens": 2.0, "completion_usd_per_1m_tokens": 8.0}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert TokenPriceSetting.model_validate(old) == new
        assert any("deprecated" in str(w.message) for w in caught)
    # 1,000 prompt tokens (400 cached at a quarter price) and 500 completion tokens (100 of them reasoning).
    price = TokenPrice(2.0, 8.0, cached_input_usd_per_1m=0.5, reasoning_usd_per_1m=8.0)
    expected = (600 * 2.0 + 400 * 0.5 + 500 * 8.0) / 1e6
    assert token_cost_usd(price, 1000, 500, cached_prompt_tokens=400, reasoning_tokens=100) == pytest.approx(expected)
    assert token_cost_usd(new.to_price(), 1000, 500) == pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6)
