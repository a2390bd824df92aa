"""A newcomer's first hour (issue 18): what they type and read must say what it means."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def truecost(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "truecost", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**os.environ, "COLUMNS": "120", **(env or {})})


def test_error_messages_keep_their_brackets(tmp_path: Path) -> None:
    """Rich read `[[gpus]]` and `[estimate.tco]` in messages as style tags and dropped them."""
    result = truecost("estimate", "train", "--gpu", "Z9", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "add a [[gpus]] row in truecost.toml" in result.stderr, result.stderr
    (tmp_path / "truecost.toml").write_text('[estimate.tco]\n"[weird]" = 1\n')
    result = truecost("estimate", "tco", cwd=tmp_path)
    assert result.returncode == 2 and "'[weird]'" in result.stderr, result.stderr


def test_on_off_flags_show_no_type_in_help(tmp_path: Path) -> None:
    result = truecost("curate", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "--dry-run" in result.stdout
    assert "<bool>" not in result.stdout


def test_building_the_package_prints_no_deprecation(tmp_path: Path) -> None:
    """setuptools warned three times that the `project.license` table form is deprecated."""
    root, copy = Path(__file__).resolve().parents[2], tmp_path / "project"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, copy / name)
    shutil.copytree(root / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    result = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir",
                             str(tmp_path / "dist"), str(copy)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "project.license" not in result.stdout + result.stderr


def test_model_config_names_the_hf_config_and_the_old_spelling_still_reads(tmp_path: Path) -> None:
    """`--config` means truecost.toml everywhere else; in `estimate train` it meant an HF config.json."""
    import json

    from truecost.estimate.catalogue import models

    (tmp_path / "config.json").write_text(json.dumps(models()["qwen2.5-7b"].config))
    new = truecost("estimate", "train", "--model-config", "config.json", "--tokens", "1B", "--json", cwd=tmp_path)
    assert new.returncode == 0, new.stderr
    assert json.loads(new.stdout)["params_total"] == 7615616512 and "deprecated" not in new.stderr
    old = truecost("estimate", "train", "--config", "config.json", "--tokens", "1B", "--json", cwd=tmp_path)
    assert old.returncode == 0 and json.loads(old.stdout)["params_total"] == 7615616512
    assert "warning: `estimate ... --config` is now --model-config" in old.stderr
    assert "--model-config" in truecost("estimate", "train", "--help", cwd=tmp_path).stdout


@pytest.mark.parametrize("args", [
    ("estimate", "train", "--model-config", "folder"),
    ("--config", "folder", "estimate"),
    ("route", "fit", "--data", "folder", "--router", "knn", "--out", "x"),
    ("monitor", "-r", "folder", "-c", "folder", "--no-ledger"),
    ("gateway", "--config", "folder", "--check"),
])
def test_a_folder_given_for_a_file_is_named_as_a_folder(tmp_path: Path, args: tuple[str, ...]) -> None:
    """It used to say "folder does not exist", which sends a newcomer looking for a typo."""
    (tmp_path / "folder").mkdir()
    result = truecost(*args, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "folder is a folder, not a file" in result.stderr, result.stderr


def test_monitor_reasons_keep_their_truecost_toml_sections(tmp_path: Path) -> None:
    """Rich read "([monitor] value_of_quality_usd)" as a style tag and printed "( value_of_quality_usd)"."""
    import json
    import random

    rng = random.Random(0)
    for name in ("ref", "cur"):
        rows = [{"prompt": f"question {i} on topic {rng.randint(0, 9)}", "quality": rng.random()} for i in range(60)]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = truecost("monitor", "-r", "ref.jsonl", "-c", "cur.jsonl", "--window", "20", "--value-of-quality",
                      "0.002", "--no-ledger", cwd=tmp_path, env={"COLUMNS": "300"})
    assert result.returncode == 0, result.stderr
    assert "([monitor] value_of_quality_usd)" in result.stdout, result.stdout
