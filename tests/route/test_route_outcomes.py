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
