"""Out-of-range numbers a careless user types: each must be one line on stderr and exit 2, never a traceback, a
negative dollar figure or a null printed where a dollar figure belongs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.estimate.test_cli import truecost


@pytest.mark.parametrize("args", [
    # An infinite price, PUE or memory printed the cost/energy quantiles as null with exit 0.
    ("train", "--params", "7B", "--tokens", "1T", "--price-per-gpu-hour", "inf"),
    ("train", "--params", "7B", "--tokens", "1T", "--pue", "inf"),
    # Fewer than one parameter crashed with ZeroDivisionError.
    ("train", "--params", "0.001", "--tokens", "1M"),
    # More active than total parameters priced a "7B" model at 70B's FLOPs.
    ("train", "--params", "7B", "--active-params", "70B", "--tokens", "1T"),
    # Serving at a negative, NaN or infinite price printed negative or null dollars as real.
    ("serve", "--params", "7B", "--price-per-gpu-hour", "-1"),
    ("serve", "--params", "7B", "--price-per-gpu-hour", "nan"),
    ("serve", "--params", "7B", "--api-usd-per-1m-input", "-3"),
    ("serve", "--params", "7B", "--api-usd-per-1m-output", "inf"),
    ("serve", "--params", "7B", "--latency-p95-ms", "nan"),
    # Tensor parallelism over more GPUs than the model has attention heads: 2,000 GPUs priced for a 7B model.
    ("serve", "--model", "llama-2-7b", "--tp", "1000"),
    # TCO overrides: NaN/inf nulled the totals; a share above 1 made serving cost negative.
    ("tco", "--set", "poor.retrains_per_year=nan"),
    ("tco", "--set", "retrains_per_year=inf"),
    ("tco", "--set", "routing_saving_share=2"),
    ("tco", "--set", "well.reviewed_share=3"),
])
def test_out_of_range_numbers_are_one_line_errors(args: tuple[str, ...]) -> None:
    result = truecost("estimate", *args, "--json")
    assert result.returncode == 2, result.stdout[:500]
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error:"), result.stderr


@pytest.mark.parametrize("toml", [
    "[hardware]\nprice_per_gpu_hour = inf\n",  # TOML spells inf and nan; both nulled the cost
    "[hardware]\npue = inf\n",
    "[target]\nrequests_per_day = nan\n",
])
def test_non_finite_numbers_in_truecost_toml_are_refused(tmp_path: Path, toml: str) -> None:
    (tmp_path / "truecost.toml").write_text(toml, encoding="utf-8")
    result = truecost("estimate", "serve", "--params", "7B", "--json", cwd=tmp_path)
    assert result.returncode == 2, result.stdout[:500]
    assert len(result.stderr.strip().splitlines()) == 1 and "truecost.toml" in result.stderr


def test_a_valid_serve_still_prices_every_figure() -> None:
    """The guards refuse only what is out of range: a free API (price 0) is a real comparison."""
    result = truecost("estimate", "serve", "--params", "7B", "--api-usd-per-1m-input", "0",
                      "--api-usd-per-1m-output", "0.5", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["usd_per_month"] > 0 and data["api"]["usd_per_month"] > 0


@pytest.mark.parametrize("config", [
    [1, 2],  # not an object: AttributeError traceback
    {"model_type": "llama", "hidden_size": -4096, "num_hidden_layers": 32, "vocab_size": 32000,
     "num_attention_heads": 32, "intermediate_size": 11008},  # priced a model of -2.4B parameters
    {"model_type": "llama", "hidden_size": "big", "num_hidden_layers": 32, "vocab_size": 32000,
     "num_attention_heads": 32, "intermediate_size": 11008},  # TypeError traceback
    {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "vocab_size": 32000,
     "num_attention_heads": 0, "intermediate_size": 11008},  # ZeroDivisionError traceback
])
def test_a_malformed_model_config_is_a_user_error(config: object) -> None:
    from truecost.errors import UserError
    from truecost.estimate import architecture_from_hf_config

    with pytest.raises(UserError, match="model config"):
        architecture_from_hf_config(config, "x")  # type: ignore[arg-type]


def test_a_nan_budget_names_the_option() -> None:
    result = truecost("estimate", "size", "--budget-usd", "nan")
    assert result.returncode == 2 and "--budget-usd" in result.stderr, result.stderr


@pytest.mark.parametrize("content", [
    '{"offsets": {"*": NaN}}',  # silently cut every estimate's cost to a third
    '{"offsets": {"*": "x"}}',  # ValueError traceback
    '{"offsets": {"*": 1e308}}',  # OverflowError traceback
    '[1, 2]',  # AttributeError traceback
])
def test_a_damaged_priors_file_is_refused(tmp_path: Path, content: str) -> None:
    """truecost-priors.json (written by `estimate calibrate`, read by every `estimate train`) edited by hand."""
    (tmp_path / "truecost-priors.json").write_text(content, encoding="utf-8")
    result = truecost("estimate", "train", "--params", "7B", "--tokens", "1T", "--json", cwd=tmp_path)
    assert result.returncode == 2 and "truecost-priors.json" in result.stderr, result.stderr[-500:]
    assert len(result.stderr.strip().splitlines()) == 1


def test_every_gpu_price_says_where_it_came_from() -> None:
    """The $/GPU-hour behind train, serve and size dollars was printed bare: now sourced (the dated catalogue
    rows it is the median of, as `truecost gpus --json` shows) or assumed (the user's own figure)."""
    from truecost.estimate.catalogue import find_gpu, price_basis

    catalogue = price_basis(find_gpu("H100 SXM"), "on-demand")
    train = json.loads(truecost("estimate", "train", "--params", "7B", "--tokens", "1T", "--json").stdout)
    assert train["assumptions"]["usd_per_gpu_hour"] == {"basis": "sourced", "source": catalogue.describe()}
    assert train["usd_per_gpu_hour"] == catalogue.usd_per_gpu_hour
    serve = json.loads(truecost("estimate", "serve", "--params", "7B", "--price-per-gpu-hour", "3", "--json").stdout)
    assert serve["assumptions"]["usd_per_gpu_hour"]["basis"] == "assumed" and serve["usd_per_gpu_hour"] == 3
    size = json.loads(truecost("estimate", "size", "--budget-usd", "1e6", "--json").stdout)
    assert size["usd_per_gpu_hour"]["basis"] == "sourced"
