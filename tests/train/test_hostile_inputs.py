"""Training configs a careless user writes: each mistake is one line and exit 2 before anything is trained."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from truecost.errors import UserError
from truecost.train import load_train_config, make_config

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
