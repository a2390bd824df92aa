"""`truecost route fit|eval` as a user runs them (the real program in a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.route._data import MMLU_PRICES, mmlu, routerbench
from truecost.route import load_router
from truecost.route.outcomes import write_outcomes


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "truecost", *args], capture_output=True, text=True, cwd=cwd)


def _toml(path: Path) -> None:
    lines = []
    for model, price in MMLU_PRICES["route"]["prices"].items():
        lines.append(f'[route.prices."{model}"]')
        lines += [f"{k} = {v}" for k, v in price.items()]
    path.write_text("\n".join(lines) + "\n")


def test_fit_then_eval_json_two_models(shared_data: Path, tmp_path: Path) -> None:
    data = mmlu(shared_data)
    train, test = data.split(0.5, seed=1)
    # Routellm outcomes carry no cost: it comes from [route.prices] in ./truecost.toml.
    write_outcomes(train.subset(range(400)).to_records(), tmp_path / "tr.jsonl")
    records = list(test.subset(range(300)).to_records())
    for r in records:
        for outcome in r["outcomes"].values():
            del outcome["cost"]
    write_outcomes(records, tmp_path / "te.jsonl")
    _toml(tmp_path / "truecost.toml")
    fit = _run("route", "fit", "--data", "tr.jsonl", "--router", "knn", "--embedder", "tfidf", "--out", "knn",
               "--json", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    summary = json.loads(fit.stdout)
    assert summary["strong_model"] == "gpt-4-1106-preview" and summary["queries"] == 400
    assert load_router(tmp_path / "knn").models == summary["models"]
    done = _run("route", "eval", "--router", "knn", "--data", "te.jsonl", "--json", "--plot", "f.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["routers"]) == {"random", "zero", "oracle", "knn"}
    for scores in result["routers"].values():
        assert {"apgr", "cpt_50", "cpt_80", "aiq", "cost_saving_at_best_single_quality", "frontier"} <= set(scores)
        assert 0 <= scores["cpt_50"] <= scores["cpt_80"] <= 1
        costs = [c for c, _ in scores["frontier"]]
        assert costs == sorted(costs)
    page = (tmp_path / "f.html").read_text()  # one chart, drawn by truecost.report: every router and both models
    assert page.count("<svg") == 1 and "<script" not in page
    assert all(f">{name}</text>" in page for name in result["routers"]) and page.count('class="tc-point"') == 2
    # The run is in the ledger.
    runs = json.loads(_run("ledger", "list", "--kind", "route", "--json", cwd=tmp_path).stdout)
    assert len(runs) == 2


def test_many_models_null_two_model_metrics(shared_data: Path, tmp_path: Path) -> None:
    train, test = routerbench(shared_data).split(0.5, seed=1)
    write_outcomes(train.subset(range(200)).to_records(), tmp_path / "tr.jsonl")
    write_outcomes(test.subset(range(100)).to_records(), tmp_path / "te.jsonl")
    assert _run("route", "fit", "--data", "tr.jsonl", "--router", "classifier", "--embedder", "tfidf", "--out", "c",
                cwd=tmp_path).returncode == 0
    done = _run("route", "eval", "--router", "c", "--data", "te.jsonl", "--json", cwd=tmp_path)
    result = json.loads(done.stdout)
    for scores in result["routers"].values():
        assert scores["apgr"] is None and scores["cpt_50"] is None and scores["cpt_80"] is None
        assert scores["aiq"] is not None
    human = _run("route", "eval", "--router", "c", "--data", "te.jsonl", cwd=tmp_path)
    assert "classifier" in human.stdout and "oracle" in human.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("route", "fit", "--data", "missing.jsonl", "--router", "knn", "--out", "x"), "missing.jsonl does not exist"),
    (("route", "fit", "--data", "bad.jsonl", "--router", "knn", "--out", "x"), "bad.jsonl:1: outcomes.a.quality"),
    (("route", "fit", "--data", "bad.jsonl", "--router", "svm", "--out", "x"), "unknown router 'svm'"),
    (("route", "eval", "--router", "nowhere", "--data", "bad.jsonl"), "router.json is missing"),
])
def test_user_mistakes_are_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    outcomes = {"a": {"quality": 2, "cost": 1}, "b": {"quality": 0, "cost": 1}}
    (tmp_path / "bad.jsonl").write_text(json.dumps({"id": "1", "prompt": "p", "outcomes": outcomes}) + "\n")
    done = _run(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_eval_fit_reports_random_and_held_out_groups(shared_data: Path, tmp_path: Path) -> None:
    data = mmlu(shared_data)
    # Two subjects, 60 queries each: small enough to fit quickly, enough to hold one subject out.
    labels = data.group_labels()
    keep = [i for s in ("mmlu_marketing", "mmlu_anatomy") for i in [j for j, g in enumerate(labels) if g == s][:60]]
    write_outcomes(data.subset(keep).to_records(), tmp_path / "all.jsonl")
    _toml(tmp_path / "truecost.toml")
    done = _run("route", "eval", "--fit", "knn", "--fit", "classifier", "--embedder", "tfidf", "--data", "all.jsonl",
                "--folds", "3", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    splits = json.loads(done.stdout)["splits"]
    assert set(splits) == {"random", "groups"}
    assert splits["groups"]["split"]["groups"] == ["mmlu_anatomy", "mmlu_marketing"]
    assert splits["groups"]["split"]["folds"] == 2 and splits["random"]["split"]["folds"] == 3
    for one in splits.values():
        assert {"knn", "classifier", "random", "zero", "oracle"} == set(one["routers"])
        assert 0 <= one["routers"]["knn"]["cpt_50"] <= 1
    human = _run("route", "eval", "--fit", "knn", "--embedder", "tfidf", "--data", "all.jsonl", "--folds", "2",
                 cwd=tmp_path)
    assert "held-out groups" in human.stdout and "random folds" in human.stdout
    both = _run("route", "eval", "--fit", "knn", "--router", "x", "--data", "all.jsonl", cwd=tmp_path)
    assert both.returncode == 2 and "either --router" in both.stderr
