"""Routers on the real shared sample (TF-IDF embeddings, for speed): they beat random, save/load exactly, and the
two-model knob can be given as a strong-call share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.route._data import mmlu, routerbench
from truecost.errors import UserError
from truecost.route import load_router, router_class
from truecost.route.evaluate import evaluate
from truecost.route.outcomes import OutcomeDataset
from truecost.route.routers import LEARNED_ROUTERS

FAST = {"mf": {"steps": 200}}


def _fit_all(train: OutcomeDataset) -> dict[str, object]:
    return {name: router_class(name)(embedder="tfidf", **FAST.get(name, {})).fit(train) for name in LEARNED_ROUTERS}


@pytest.fixture(scope="module")
def mmlu_split(shared_data: Path) -> tuple[OutcomeDataset, OutcomeDataset]:
    return mmlu(shared_data).split(0.5, seed=0)


@pytest.fixture(scope="module")
def mmlu_result(mmlu_split: tuple[OutcomeDataset, OutcomeDataset]) -> tuple[dict, dict]:
    train, test = mmlu_split
    routers = _fit_all(train)
    return routers, evaluate(routers, test)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def routerbench_result(shared_data: Path) -> tuple[dict, dict, OutcomeDataset]:
    train, test = routerbench(shared_data).split(0.5, seed=0)
    routers = _fit_all(train)
    return routers, evaluate(routers, test), test  # type: ignore[arg-type]


def test_split_is_by_query(mmlu_split: tuple[OutcomeDataset, OutcomeDataset]) -> None:
    train, test = mmlu_split
    assert not set(train.prompts) & set(test.prompts)
    assert abs(len(train) - len(test)) <= 10


def test_learned_routers_beat_random_on_mmlu(mmlu_result: tuple[dict, dict]) -> None:
    scores = mmlu_result[1]["routers"]
    assert scores["zero"]["apgr"] == pytest.approx(0.5)
    assert scores["oracle"]["apgr"] > 1.0
    for name in LEARNED_ROUTERS:
        assert scores[name]["apgr"] > scores["random"]["apgr"] + 0.05, name
        assert scores[name]["apgr"] > 0.55, name
        assert scores[name]["cpt_50"] < scores["random"]["cpt_50"], name


def test_learned_routers_beat_random_and_zero_on_routerbench(routerbench_result: tuple[dict, dict, object]) -> None:
    scores = routerbench_result[1]["routers"]
    assert scores["knn"]["apgr"] is None  # two-model metrics are null with 11 models
    assert scores["oracle"]["aiq"] > scores["zero"]["aiq"] > scores["random"]["aiq"]
    for name in LEARNED_ROUTERS:
        assert scores[name]["aiq"] > scores["random"]["aiq"], name
    assert scores["knn"]["aiq"] > scores["zero"]["aiq"]
    assert scores["knn"]["cost_saving_at_98pct_best_single_quality"] > 0.2


def test_cascade_uses_its_checker_on_routerbench(routerbench_result: tuple[dict, dict, OutcomeDataset]) -> None:
    routers, _, test = routerbench_result
    cascade = routers["cascade"]
    assert cascade.has_checker_ and cascade.cheap_model_ == "mistralai/mistral-7b-chat"
    cheap = test.models.index(cascade.cheap_model_)
    answers = test.responses[cascade.cheap_model_]
    accept = cascade.check(test.prompts, answers)
    truth = test.quality[:, cheap] > 0.5
    # The checker reads the answer and ranks right answers above wrong ones better than chance. (Weakly: Winogrande
    # answers are one letter and MBPP answers are code it does not run, so there is little to read.)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(truth, accept) > 0.55
    first = cascade.route(test.prompts[0], 0.5)
    assert first.model == cascade.cheap_model_
    after = cascade.escalate(test.prompts[0], answers[0], 0.0)
    assert after is None or after.model != cascade.cheap_model_


@pytest.mark.parametrize("name", LEARNED_ROUTERS)
def test_save_load_gives_identical_decisions(name: str, routerbench_result: tuple[dict, dict, OutcomeDataset],
                                             tmp_path: Path) -> None:
    routers, _, test = routerbench_result
    router = routers[name]
    loaded = load_router(router.save(tmp_path / name))
    assert type(loaded) is type(router) and loaded.models == router.models
    prompts = test.prompts[:40]
    np.testing.assert_allclose(loaded.predict_quality(prompts), router.predict_quality(prompts), rtol=1e-6)
    for knob in (0.0, 0.3, 5.0):
        one_by_one = [router.route(prompt, knob) for prompt in prompts[:10]]
        assert [loaded.route(prompt, knob) for prompt in prompts[:10]] == one_by_one
        # A batch does the same sums in another order: same choices, scores equal to rounding.
        batch = loaded.route_many(prompts[:10], knob)
        assert [d.model for d in batch] == [d.model for d in one_by_one]
        assert [d.score for d in batch] == pytest.approx([d.score for d in one_by_one], rel=1e-9, abs=1e-12)
    assert not any(p.suffix in {".pkl", ".pickle"} for p in (tmp_path / name).iterdir())


def test_strong_share_knob_is_calibrated(mmlu_result: tuple[dict, dict],
                                         mmlu_split: tuple[OutcomeDataset, OutcomeDataset]) -> None:
    routers, _ = mmlu_result
    _, test = mmlu_split
    router = routers["knn"]
    strong = router.strong_model
    assert strong == "gpt-4-1106-preview"
    for share in (0.2, 0.5, 0.8):
        knob = router.knob_for_strong_share(share)
        chosen = [router.route(p, knob).model for p in test.prompts[:300]]
        assert np.mean([m == strong for m in chosen]) == pytest.approx(share, abs=0.1)
    assert router.knob_for_strong_share(1.0) == 0.0
    with pytest.raises(UserError, match="between 0 and 1"):
        router.knob_for_strong_share(1.5)


def test_decision_and_knob_semantics(mmlu_result: tuple[dict, dict]) -> None:
    router = mmlu_result[0]["classifier"]
    decision = router.route("What is the capital of France?\nA. Paris\nB. Rome\nAnswer:", 0.0)
    assert set(decision.expected_quality) == set(router.models)
    assert decision.score == pytest.approx(decision.expected_quality[decision.model]
                                           - 0.0 * decision.expected_cost_usd[decision.model])
    # A huge knob always picks the cheapest model.
    assert router.route("anything", 1e9).model == "mistralai/Mixtral-8x7B-Instruct-v0.1"
    with pytest.raises(UserError, match="knob"):
        router.route("x", -1.0)


def test_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown router 'svm'"):
        router_class("svm")
    with pytest.raises(UserError, match="not fitted"):
        router_class("knn")().route("x", 0.0)
    with pytest.raises(UserError, match="router.json is missing"):
        load_router(tmp_path)


def test_mf_gradient_matches_finite_differences() -> None:
    from scipy.optimize import check_grad

    from truecost.route.routers import _mf_loss, _MFShapes

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 6))
    y = rng.random((30, 3))
    known = (rng.random((30, 3)) > 0.2).astype(float)
    shapes = _MFShapes(6, 4, 3)
    theta = rng.normal(0, 0.3, 6 * 4 + 4 + 3 * 4 + 3)
    error = check_grad(lambda t: _mf_loss(t, x, y, known, shapes, 0.1)[0],
                       lambda t: _mf_loss(t, x, y, known, shapes, 0.1)[1], theta)
    assert error < 1e-5 * np.linalg.norm(_mf_loss(theta, x, y, known, shapes, 0.1)[1])
    # A missing outcome weighs nothing: changing its label changes neither loss nor gradient.
    y2 = y.copy()
    y2[known == 0] = 1 - y2[known == 0]
    assert _mf_loss(theta, x, y2, known, shapes, 0.1)[0] == pytest.approx(_mf_loss(theta, x, y, known, shapes, 0.1)[0])


def test_router_saved_with_an_old_hyperparameter_still_loads(
        routerbench_result: tuple[dict, dict, OutcomeDataset], tmp_path: Path) -> None:
    import json

    router = routerbench_result[0]["mf"]
    folder = router.save(tmp_path / "mf")
    doc = json.loads((folder / "router.json").read_text())
    doc["params"]["learning_rate"] = 0.01  # what mf saved while it trained with a hand-written Adam loop
    (folder / "router.json").write_text(json.dumps(doc))
    prompts = routerbench_result[2].prompts[:5]
    np.testing.assert_allclose(load_router(folder).predict_quality(prompts), router.predict_quality(prompts))


def test_cv_folds_hold_out_whole_groups(shared_data: Path) -> None:
    from truecost.route.evaluate import cv_folds

    data = mmlu(shared_data)
    labels = np.array(data.group_labels())
    assert len(set(labels)) == 10 and labels[0].startswith("mmlu_")
    folds = cv_folds(data, "groups", 5, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(data)))
    for test in folds:
        train = np.setdiff1d(np.arange(len(data)), test)
        assert not set(labels[test]) & set(labels[train])
    for test in cv_folds(data, "random", 5, seed=0):
        train = np.setdiff1d(np.arange(len(data)), test)
        assert not {data.prompts[i] for i in test} & {data.prompts[i] for i in train}
    with pytest.raises(UserError, match="at least 2 groups"):
        cv_folds(data.subset(np.flatnonzero(labels == labels[0])), "groups")


def test_evaluate_cv_predicts_each_group_from_the_others(shared_data: Path) -> None:
    from truecost.route.evaluate import cross_val_predictions, cv_folds, evaluate_cv, predictions

    data = routerbench(shared_data).select_models(["gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"])
    make = lambda: router_class("knn")(k=20, embedder="tfidf")  # noqa: E731
    result = evaluate_cv({"knn": make}, data, "groups", folds=5)
    assert result["split"] == {"scheme": "groups", "folds": 2, "groups": ["mbpp", "winogrande"]}
    assert result["n_queries"] == len(data) and result["routers"]["knn"]["apgr"] is not None
    # The MBPP queries are predicted by a router fitted on Winogrande only (and the other way round).
    pooled = cross_val_predictions(make, data, cv_folds(data, "groups", 5))
    mbpp = np.array(data.group_labels()) == "mbpp"
    alone = make().fit(data.subset(np.flatnonzero(~mbpp)))
    np.testing.assert_allclose(pooled.quality[mbpp], predictions(alone, data.subset(np.flatnonzero(mbpp))).quality)
