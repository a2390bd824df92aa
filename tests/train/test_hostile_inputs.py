"""Training configs a careless user writes: each mistake is one line and exit 2 before anything is trained."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from truecost.errors import UserError
from truecost.train import load_train_config, make_config, with_value

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(("section", "field"), [
    ("optim", "lr"),  # an infinite learning rate was accepted, then diverged at the first step
    ("hardware", "device_memory_gib"),  # crashed the pre-flight with a pydantic traceback
    ("budget", "max_usd"),
])
@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_finite_numbers_are_refused_by_name(section: str, field: str, value: float) -> None:
    with pytest.raises(UserError, match=f"{section}.{field}"):
        make_config({section: {field: value}})


def test_a_folder_given_as_the_config_says_so(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is a folder"):  # it said "does not exist"
        load_train_config(tmp_path)


def test_the_plan_refuses_an_infinite_memory_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "truecost", "train", "--plan", str(EXAMPLES / "train-tiny.yaml"),
                             "--set", "hardware.device_memory_gib=inf", "--json"], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 2 and result.stdout == "", result.stderr[-800:]
    assert len(result.stderr.strip().splitlines()) == 1 and "device_memory_gib" in result.stderr


@pytest.mark.parametrize(("name", "content"), [
    ("latin1.jsonl", b'{"text": "caf\xe9"}\n'),  # not UTF-8: UnicodeDecodeError traceback
    ("broken.jsonl.gz", b"not gzip"),  # BadGzipFile traceback
    ("broken.parquet", b"garbage"),  # ArrowInvalid traceback
])
def test_an_unreadable_data_file_is_one_error_naming_it(tmp_path: Path, name: str, content: bytes) -> None:
    from truecost.train.data import read_texts

    (tmp_path / name).write_bytes(content)
    with pytest.raises(UserError, match=f"cannot read .*{name}"):
        read_texts(str(tmp_path / name))


@pytest.mark.parametrize("text", [42, {"a": 1}, ["x"]])
def test_a_text_that_is_not_a_string_is_refused_not_trained_as_its_repr(tmp_path: Path, text: object) -> None:
    """str() turned 42 into the document "42" and {"a": 1} into "{'a': 1}", silently."""
    import json

    from truecost.train.data import read_texts

    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "a real document"}) + "\n" + json.dumps({"text": text}) + "\n",
                    encoding="utf-8")
    with pytest.raises(UserError, match=r"d\.jsonl:2: 'text' is a"):
        read_texts(str(path))


@pytest.mark.parametrize(("space", "message"), [
    ({"optim.lrr": {"type": "float", "low": 1e-3, "high": 1e-2}}, "optim.lrr = 0.001: .*no such field"),
    ({"seq_len": {"type": "categorical", "choices": [64, -5]}}, "seq_len = -5: .*greater than or equal to 8"),
])
def test_tune_checks_the_search_space_before_any_trial(tmp_path: Path, space: dict, message: str) -> None:
    """A typo or out-of-range choice failed a trial mid-study (after others had trained), stored in the shared
    study; now it is refused before the study is created."""
    import optuna

    from truecost.ledger import Ledger
    from truecost.train.tune import tune

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    config = make_config(name="bad-space", output_dir=str(tmp_path / "runs"), tune={"search_space": space})
    with pytest.raises(UserError, match=message):
        tune(config, trials=1, ledger=Ledger(url))
    assert optuna.study.get_all_study_names(storage=url) == []


def test_a_log_scale_range_must_start_above_zero() -> None:
    """optuna raised a bare ValueError traceback when the first trial asked for the value."""
    with pytest.raises(UserError, match="log-scale parameter needs 'low' > 0"):
        make_config(tune={"search_space": {"optim.lr": {"type": "float", "low": -1, "high": 0.01, "log": True}}})


@pytest.mark.parametrize("below", ["", "sub"])
def test_an_output_dir_at_or_under_a_file_is_refused_before_training(tmp_path: Path, below: str) -> None:
    """It was a FileExistsError / NotADirectoryError traceback once the ledger run was opened."""
    from tests.train.conftest import tiny
    from truecost.train.runner import train

    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine", encoding="utf-8")
    config = with_value(tiny(tmp_path), "output_dir", str(a_file / below) if below else str(a_file))
    with pytest.raises(UserError, match="is a file, not a folder"):
        train(config)
    assert a_file.read_text(encoding="utf-8") == "mine"
