"""Each extra installs what its commands import (issue 18): a fresh virtual environment per extra, only that extra
installed, then the matching command's `--help` and one tiny real invocation.

`pip install 'truecost[monitor]'` once gave a `truecost monitor` that could not import pandas; this catches any
such gap. Slow (one venv per extra, torch from the local wheel for train/review), so it runs in CI
(`CI=true`, set by `.ci/run`) or with TRUECOST_TEST_EXTRAS=1, and skips otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (os.environ.get("CI") or os.environ.get("TRUECOST_TEST_EXTRAS")),
                       reason="installs a venv per extra: runs in CI, or with TRUECOST_TEST_EXTRAS=1"),
]


def _venv(where: Path, extra: str) -> Path:
    """A fresh venv with truecost (editable) and only `extra`; its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    spec = f"{ROOT}[{extra}]" if extra else str(ROOT)
    done = subprocess.run([str(where / "bin" / "python"), "-m", "pip", "install", "-q", "-e", spec],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return where / "bin"


def _run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(COLUMNS="120", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    result = subprocess.run([str(bin_dir / "truecost"), *args], capture_output=True, text=True, cwd=cwd, env=env,
                            timeout=900)
    assert result.returncode == 0, f"truecost {' '.join(args)}:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr
    return result


def _jsonl(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def core(bin_dir: Path, tmp: Path) -> None:
    _run(bin_dir, "--help", cwd=tmp)
    est = json.loads(_run(bin_dir, "estimate", "train", "--model", "llama-2-7b", "--json", cwd=tmp).stdout)
    assert est["cost_usd"]["p50"] > 0
    _run(bin_dir, "ledger", "list", cwd=tmp)


def curate(bin_dir: Path, tmp: Path) -> None:
    _run(bin_dir, "curate", "--help", cwd=tmp)
    sentence = "the quick brown fox jumps over the lazy dog while the cat sleeps on a warm mat"
    words = sentence.split()
    rows = [{"id": str(i), "text": " ".join(words[(i + j) % len(words)] for j in range(60)) + f". Item {i}."}
            for i in range(30)]
    rows += [dict(rows[0], id="copy")]
    _jsonl(tmp / "in.jsonl", rows)
    out = json.loads(_run(bin_dir, "curate", "in.jsonl", "-o", "out", "--json", cwd=tmp).stdout)
    totals = out["totals"]
    assert totals["docs_in"] == 31 and totals["docs_out"] <= 30  # the copy at least is gone


def monitor(bin_dir: Path, tmp: Path) -> None:
    _run(bin_dir, "monitor", "--help", cwd=tmp)
    rows = [{"prompt": f"what is {i % 7} times {i % 5}?", "quality": float(i % 4 > 0)} for i in range(120)]
    _jsonl(tmp / "ref.jsonl", rows[:60])
    _jsonl(tmp / "cur.jsonl", rows[60:])
    doc = json.loads(_run(bin_dir, "monitor", "-r", "ref.jsonl", "-c", "cur.jsonl", "--window", "20", "--json",
                          "--no-ledger", cwd=tmp).stdout)
    assert len(doc["windows"]) == 3 and doc["decision"]["action"] in ("none", "watch", "retrain")


def route(bin_dir: Path, tmp: Path) -> None:
    _run(bin_dir, "route", "--help", cwd=tmp)
    _run(bin_dir, "gateway", "--help", cwd=tmp)
    topics = ["sum the numbers", "write a sonnet about", "translate to French", "prove the lemma about"]
    rows = [{"id": str(i), "prompt": f"{topics[i % 4]} item {i}",
             "outcomes": {"small": {"quality": float(i % 4 < 2), "cost": 0.001},
                          "large": {"quality": 1.0, "cost": 0.01}}} for i in range(40)]
    _jsonl(tmp / "outcomes.jsonl", rows)
    fitted = json.loads(_run(bin_dir, "route", "fit", "--data", "outcomes.jsonl", "--router", "knn", "--embedder",
                             "tfidf", "--out", "router", "--json", cwd=tmp).stdout)
    assert fitted and (tmp / "router").is_dir()


def train(bin_dir: Path, tmp: Path) -> None:
    _run(bin_dir, "train", "--help", cwd=tmp)
    out = json.loads(_run(bin_dir, "train", str(ROOT / "examples" / "train-tiny.yaml"), "--set", "max_steps=2",
                          "--set", "eval.every_steps=2", "--set", "data.max_chars=20000", "--set",
                          f"output_dir={tmp / 'run'}", "--json", cwd=tmp).stdout)
    assert out["status"] in ("completed", "stopped") and out["steps"] >= 1


def review(bin_dir: Path, tmp: Path) -> None:
    _run(bin_dir, "review", "--help", cwd=tmp)
    from tests.review.servers import safe_reply, scripted_app, serve

    _jsonl(tmp / "eval.jsonl", [{"prompt": "What is 17 + 25?", "expected": "42"},
                                {"prompt": "Name a colour.", "expected": "blue"}])
    with serve(scripted_app(safe_reply)) as url:
        _run(bin_dir, "review", "--target", f"openai:{url}#scripted", "--suites", "performance", "--data",
             "eval=eval.jsonl", "--out", "review-out", "--json", cwd=tmp)
    assert (tmp / "review-out" / "results.json").is_file()


CHECKS: dict[str, Callable[[Path, Path], None]] = {
    "": core, "curate": curate, "monitor": monitor, "route": route, "train": train, "review": review}


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Future[Path]]:
    """Every extra's venv, installed three at a time (pip mostly waits on disk and unpacking)."""
    root = tmp_path_factory.mktemp("extras")
    pool = ThreadPoolExecutor(max_workers=3)
    futures = {extra: pool.submit(_venv, root / (extra or "core"), extra) for extra in CHECKS}
    pool.shutdown(wait=False)
    return futures


@pytest.mark.parametrize("extra", list(CHECKS), ids=[e or "core" for e in CHECKS])
def test_each_extra_installs_what_its_commands_import(extra: str, venvs: dict[str, Future[Path]],
                                                      tmp_path: Path) -> None:
    CHECKS[extra](venvs[extra].result(), tmp_path)
