"""The training config: defaults are valid, and every mistake names the field and what it accepts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from truecost.errors import UserError
from truecost.train import load_train_config, make_config, with_value
from truecost.train.config import TINY_ARCHITECTURE

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_every_field_has_a_default() -> None:
    config = make_config()
    assert config.method == "full" and config.precision == "auto"
    assert config.model.architecture == TINY_ARCHITECTURE
    assert config.tokens_per_step == config.seq_len * config.micro_batch * config.grad_accum


def test_bad_choice_names_the_field_and_the_allowed_values() -> None:
    with pytest.raises(UserError) as info:
        make_config(method="qlroa")
    message = str(info.value)
    assert "method" in message and "'full'" in message and "'lora'" in message and "'qlora'" in message
    assert "qlroa" in message


def test_nested_field_and_unknown_key_are_named() -> None:
    with pytest.raises(UserError, match=r"optim\.schedule.*'cosine'.*'linear'.*'constant'"):
        make_config(optim={"schedule": "cosine-ish"})
    with pytest.raises(UserError, match=r"budget\.max_dollars"):
        make_config(budget={"max_dollars": 1})
    with pytest.raises(UserError, match=r"tune\.search_space\.optim\.lr.*'low' < 'high'"):
        make_config(tune={"search_space": {"optim.lr": {"type": "float", "low": 1.0, "high": 0.1}}})


def test_partial_architecture_tweaks_the_tiny_default() -> None:
    config = make_config(model={"architecture": {"hidden_size": 64}})
    assert config.model.architecture["hidden_size"] == 64
    assert config.model.architecture["model_type"] == "llama"


def test_with_value_sets_a_dotted_field_and_validates() -> None:
    config = with_value(make_config(), "optim.lr", 1e-4)
    assert config.optim.lr == 1e-4
    with pytest.raises(UserError, match="optim.lr"):
        with_value(config, "optim.lr", -1)
    with pytest.raises(UserError, match="no such field"):
        with_value(config, "optim.nope", 1)


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("seq_len: [unclosed\n")
    with pytest.raises(UserError, match="bad.yaml: not valid YAML"):
        load_train_config(bad)
    bad.write_text("micro_batch: 0\n")
    with pytest.raises(UserError, match=r"bad.yaml: micro_batch: .*greater than or equal to 1"):
        load_train_config(bad)


def test_shipped_examples_are_valid() -> None:
    for path in sorted(EXAMPLES.glob("train-*.yaml")):
        load_train_config(path)


def test_cli_config_error_is_one_line_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("precision: fp64\n")
    result = subprocess.run([sys.executable, "-m", "truecost", "train", str(config)], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "precision" in result.stderr and "'bf16'" in result.stderr and "fp64" in result.stderr
    assert result.stdout == ""
