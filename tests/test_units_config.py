"""Quantity parsing and the project file."""

from __future__ import annotations

from pathlib import Path

import pytest

from truecost.config import load_config
from truecost.errors import UserError
from truecost.units import format_quantity, parse_quantity


@pytest.mark.parametrize("text, value", [("70B", 70e9), ("2T", 2e12), ("1e12", 1e12), ("300M", 3e8),
                                         ("4k", 4e3), ("1.5e3", 1500.0), ("1_000", 1000.0), (7, 7.0)])
def test_parse_quantity(text: str | int, value: float) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("bad", ["", "seven", "-5", "0", "70X", "1e"])
def test_parse_quantity_rejects(bad: str) -> None:
    with pytest.raises(UserError):
        parse_quantity(bad, what="--tokens")


def test_format_inverts_parse() -> None:
    for value in (7e10, 2e12, 3e8, 999.0):
        assert parse_quantity(format_quantity(value)) == pytest.approx(value, rel=1e-2)


def test_config_defaults_and_file(tmp_path: Path) -> None:
    assert load_config().target.model == "llama-2-7b"
    path = tmp_path / "truecost.toml"
    path.write_text('[target]\nparams = "13B"\ntraining_tokens = "1T"\n[hardware]\ngpu = "A100 SXM4 80GB"\n')
    cfg = load_config(path)
    assert cfg.target.params == 13e9 and cfg.target.training_tokens == 1e12
    assert cfg.hardware.gpu == "A100 SXM4 80GB"


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[target]\nseq_len = -3\nunknown_key = 1\n")
    with pytest.raises(UserError) as info:
        load_config(path)
    assert "target.seq_len" in str(info.value) and "target.unknown_key" in str(info.value)
    path.write_text("[target\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(path)
