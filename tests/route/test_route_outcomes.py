"""The outcomes format and the two importers: round trips against an independent read of the public files."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.route._data import mmlu_config
from truecost.config import Config
from truecost.errors import UserError
from truecost.route.importers import import_outcomes, import_routellm, import_routerbench
from truecost.route.outcomes import OutcomeDataset, read_outcomes, write_outcomes


def _write(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


GOOD = {"id": "a", "prompt": "2+2?", "outcomes": {"small": {"quality": 1, "cost": 0.001},
                                                     "big": {"quality": 0.5, "cost": 0.01}}}


def test_round_trip(tmp_path: Path) -> None:
    data = OutcomeDataset(ids=["a", "b"], prompts=["p1", "p2"], models=["x", "y"],
                          quality=np.array([[1.0, 0.25], [0.0, 1.0]]), cost_usd=np.array([[1e-4, 2e-3], [2e-4, 3e-3]]),
                          responses={"x": ["ans", None]})
    write_outcomes(data.to_records(), tmp_path / "o.jsonl")
    back = read_outcomes(tmp_path / "o.jsonl")
    assert back.ids == data.ids and back.prompts == data.prompts and back.models == data.models
    np.testing.assert_array_equal(back.quality, data.quality)
    np.testing.assert_array_equal(back.cost_usd, data.cost_usd)
    assert back.responses == {"x": ["ans", None]}


@pytest.mark.parametrize(("line", "expected"), [
    ("{not json", "o.jsonl:2: not valid JSON"),
    ({**GOOD, "prompt": None}, "o.jsonl:2: prompt"),
    ({"id": "b", "outcomes": GOOD["outcomes"]}, "o.jsonl:2: prompt: Field required"),
    ({**GOOD, "outcomes": {"small": {"quality": 1.5, "cost": 0.1}, "big": {"quality": 0}}},
     "o.jsonl:2: outcomes.small.quality"),
    ({**GOOD, "outcomes": {"small": {"quality": 1, "cost": -1}, "big": {"quality": 0, "cost": 1}}},
     "o.jsonl:2: outcomes.small.cost"),
    ({**GOOD, "outcomes": {"small": {"quality": 1, "cost": 0.1}}}, "o.jsonl:2: outcomes: models"),
    ({**GOOD, "outcomes": {"small": {"quality": 1, "cost": 0.1}, "big": {"quality": 1}}},
     "o.jsonl:2: outcomes.big.cost: missing, and no price is known for 'big'"),
])
def test_bad_lines_name_file_line_and_field(tmp_path: Path, line: object, expected: str) -> None:
    path = _write(tmp_path / "o.jsonl", [GOOD, line])
    with pytest.raises(UserError, match=None) as info:
        read_outcomes(path)
    assert expected in str(info.value)


def test_missing_cost_comes_from_per_token_prices(tmp_path: Path) -> None:
    record = {"id": "a", "prompt": "x" * 400, "outcomes": {"gpt-4o": {"quality": 1}, "mine": {"quality": 0}}}
    path = _write(tmp_path / "o.jsonl", [record])
    cfg = Config.model_validate({"route": {"prices": {"mine": {"input_usd_per_1m": 1.0, "output_usd_per_1m": 2.0}},
                                           "completion_tokens": 50}})
    data = read_outcomes(path, cfg)
    # 400 characters / 4 per token = 100 prompt tokens, 50 completion tokens.
    assert data.cost_usd[0, 1] == pytest.approx((100 * 1.0 + 50 * 2.0) / 1e6)
    # gpt-4o's price comes from the estimate catalogue ($2.50 / $10 per 1M).
    assert data.cost_usd[0, 0] == pytest.approx((100 * 2.5 + 50 * 10.0) / 1e6)
    with pytest.raises(UserError, match=r"\[route\]: prices.mine.input_usd_per_1m"):
        read_outcomes(path, Config.model_validate({"route": {"prices": {"mine": {"input_usd_per_1m": -1,
                                                                                 "output_usd_per_1m": 1}}}}))


def test_routerbench_import_matches_the_csv(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "routing_sample" / "routerbench" / "winograde_train.csv"
    out = tmp_path / "rb.jsonl"
    write_outcomes(import_routerbench(source), out)
    data = read_outcomes(out)
    pd = pytest.importorskip("pandas")  # a second, independent CSV reader as the reference
    frame = pd.read_csv(source)
    assert len(data) == len(frame) == 887
    assert len(data.models) == 11
    for model in data.models:
        np.testing.assert_allclose(data.quality[:, data.models.index(model)], frame[model].to_numpy())
        np.testing.assert_allclose(data.cost_usd[:, data.models.index(model)], frame[f"{model}|total_cost"])
    # RouterBench's own label: the cheapest model that answered correctly (where one did).
    for i, expected in enumerate(frame["oracle_model_to_route_to"]):
        correct = data.quality[i] == 1
        if correct.any():
            cheapest = data.models[int(np.argmin(np.where(correct, data.cost_usd[i], np.inf)))]
            assert cheapest == expected or data.cost_usd[i, data.models.index(expected)] == pytest.approx(
                data.cost_usd[i, data.models.index(cheapest)])
    assert data.prompts[0].startswith("Please answer with the letter")
    assert set(data.responses) == set(data.models)


def test_routellm_import_matches_the_csv_and_drops_contaminated(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "routing_sample" / "routellm_mmlu" / "responses"
    data = read_outcomes(_write_import("routellm", folder, tmp_path / "a.jsonl"), mmlu_config())
    pd = pytest.importorskip("pandas")
    frames = [pd.read_csv(f) for f in sorted(folder.glob("*.csv"))]
    frame = pd.concat(frames, ignore_index=True)
    assert len(data) == len(frame) == 1841
    assert data.prompts == list(frame["prompt"])
    for model in data.models:
        np.testing.assert_array_equal(data.quality[:, data.models.index(model)], frame[model].astype(float))
    assert len(set(data.ids)) == len(data)
    # RouteLLM's list matches none of these subjects' prompts; a list naming two of them drops exactly those.
    contaminated = _write(tmp_path / "c.jsonl", [{"eval_prompt": data.prompts[3]}, {"train_prompt": data.prompts[9]}])
    records = list(import_routellm(folder, contaminated))
    assert len(records) == 1841 - 2
    assert {data.prompts[3], data.prompts[9]}.isdisjoint(r["prompt"] for r in records)


def _write_import(fmt: str, source: Path, out: Path) -> Path:
    write_outcomes(import_outcomes(fmt, source), out)
    return out


def test_importers_reject_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["prompt", "weak", "strong"])
        writer.writerow(["q1", "True", "False"])
        writer.writerow(["q2", "maybe", "True"])
    with pytest.raises(UserError, match=r"bad.csv:3: column 'weak': expected True/False, got 'maybe'"):
        list(import_routellm(bad))
    with pytest.raises(UserError, match="not a RouterBench CSV"):
        list(import_routerbench(bad))
    with pytest.raises(UserError, match="does not exist"):
        list(import_routerbench(tmp_path / "nope.csv"))
    with pytest.raises(UserError, match="unknown format"):
        import_outcomes("helm", bad)


def test_cli_import_writes_outcomes(shared_data: Path, tmp_path: Path) -> None:
    import subprocess

    source = shared_data / "routing_sample" / "routerbench" / "mbpp_train.csv"
    out = tmp_path / "mbpp.jsonl"
    done = subprocess.run([sys.executable, "-m", "truecost", "route", "import", "routerbench", str(source), "-o",
                           str(out), "--json"], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["queries"] == 299
    assert len(read_outcomes(out)) == 299
    done = subprocess.run([sys.executable, "-m", "truecost", "route", "import", "routerbench",
                           str(tmp_path / "missing.csv"), "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "missing.csv does not exist" in done.stderr and "Traceback" not in done.stderr


def _blank_cells(source: Path, out: Path, model: str, every: int) -> int:
    """A RouterBench CSV like a real one with gaps: `model`'s correctness empty on every `every`-th row, and one
    other model's cost empty on row 5. Returns how many rows have a gap."""
    with source.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for i, row in enumerate(rows):
        if i % every == 0:
            row[model] = ""
    rows[5]["claude-v2|total_cost"] = ""
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return len({i for i in range(len(rows)) if i % every == 0} | {5})


def test_routerbench_file_with_empty_cells_imports_and_routes(shared_data: Path, tmp_path: Path) -> None:
    import subprocess

    pd = pytest.importorskip("pandas")
    source = tmp_path / "gappy.csv"
    rows_with_gap = _blank_cells(shared_data / "routing_sample" / "routerbench" / "mbpp_train.csv", source,
                                    "claude-instant-v1", every=3)
    frame = pd.read_csv(source)  # the independent count of empty cells
    expected = {"claude-instant-v1": int(frame["claude-instant-v1"].isna().sum()), "claude-v2": 1}
    out = tmp_path / "gappy.jsonl"
    done = subprocess.run([sys.executable, "-m", "truecost", "route", "import", "routerbench", str(source), "-o",
                           str(out), "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["queries"] == len(frame) == 299
    assert summary["missing_by_model"] == expected and summary["missing_outcomes"] == sum(expected.values())
    data = read_outcomes(out)
    assert data.missing_by_model() == expected
    col = data.models.index("claude-instant-v1")
    np.testing.assert_array_equal(np.isnan(data.quality[:, col]), frame["claude-instant-v1"].isna())
    known = ~np.isnan(data.quality[:, col])
    np.testing.assert_array_equal(data.quality[known, col], frame["claude-instant-v1"][known])
    assert set(data.group_labels()) == {"mbpp"}
    assert len(data.complete()) == len(frame) - rows_with_gap
    # Missing stays missing through a write and a read.
    write_outcomes(data.to_records(), tmp_path / "again.jsonl")
    np.testing.assert_array_equal(np.isnan(read_outcomes(tmp_path / "again.jsonl").quality), np.isnan(data.quality))


def test_routers_and_metrics_skip_missing_outcomes(shared_data: Path, tmp_path: Path) -> None:
    from tests.route._data import routerbench
    from truecost.route import router_class
    from truecost.route.evaluate import evaluate
    from truecost.route.routers import LEARNED_ROUTERS

    full = routerbench(shared_data).select_models(["gpt-4-1106-preview", "claude-instant-v1",
                                                   "mistralai/mistral-7b-chat"])
    gappy = OutcomeDataset(ids=full.ids, prompts=full.prompts, models=full.models, quality=full.quality.copy(),
                           cost_usd=full.cost_usd.copy(), responses=full.responses, groups=full.groups)
    gappy.quality[::4, 1] = np.nan  # a quarter of claude-instant's outcomes unknown
    gappy.cost_usd[::8, 1] = np.nan
    train, test = gappy.split(0.5, seed=0)
    routers = {n: router_class(n)(embedder="tfidf", **({"steps": 50} if n == "mf" else {})).fit(train)
               for n in LEARNED_ROUTERS}
    for router in routers.values():
        assert np.isfinite(router.predict_quality(test.prompts[:20])).all()
    # Each model's means are over its known outcomes only.
    assert routers["knn"].mean_quality_[1] == pytest.approx(np.nanmean(train.quality[:, 1]))
    result = evaluate(routers, test)
    assert result["n_queries"] == len(test.complete()) == int((~np.isnan(test.quality).any(axis=1)).sum())
    assert result["n_queries_missing_outcomes"] == len(test) - result["n_queries"] > 0
    for name in LEARNED_ROUTERS:
        assert result["routers"][name]["aiq"] > result["routers"]["random"]["aiq"], name
    # kNN against a brute-force reference: mean of the neighbours' known outcomes, shrunk to the model mean.
    knn = routers["knn"]
    features = knn.embedder_.transform(test.prompts[:5])
    sims = features @ knn.embedder_.transform(train.prompts).T
    for i in range(5):
        top = np.argsort(-sims[i])[: knn.k_]
        q = train.quality[top, 1]
        expected = (np.nansum(q) + knn.prior_weight * knn.mean_quality_[1]) / ((~np.isnan(q)).sum() + knn.prior_weight)
        assert knn.predict_quality([test.prompts[i]])[0, 1] == pytest.approx(expected, rel=1e-5)


def test_routellm_empty_cell_is_a_missing_outcome(tmp_path: Path) -> None:
    from truecost.route.importers import ImportStats

    path = tmp_path / "mmlu_x.csv"
    path.write_text("prompt,weak,strong\nq1,True,\nq2,False,True\nq3,,\n")
    stats = ImportStats()
    records = list(import_routellm(path, stats=stats))
    assert [r["outcomes"]["strong"]["quality"] for r in records] == [None, 1.0, None]
    assert stats.as_dict() == {"queries": 3, "missing_outcomes": 3, "missing_by_model": {"strong": 2, "weak": 1}}
    assert {r["group"] for r in records} == {"mmlu_x"}
    write_outcomes(records, tmp_path / "o.jsonl")
    data = read_outcomes(tmp_path / "o.jsonl", Config.model_validate(
        {"route": {"prices": {m: {"input_usd_per_1m": 1, "output_usd_per_1m": 1} for m in ("weak", "strong")}}}))
    assert data.missing_by_model() == {"weak": 1, "strong": 2} and len(data.complete()) == 1
