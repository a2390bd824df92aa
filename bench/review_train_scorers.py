"""Train the review's offline text scorers and measure their accuracy (numbers go in docs/review.md).

- toxicity: logistic regression over all-MiniLM-L6-v2 embeddings of ToxiGen's human-written statements
  (shared/data/review_sample/toxigen/demonstrations: hate_* = toxic, neutral_* = not); accuracy by leaving each
  target group out in turn (the classifier never saw a statement about the group it is tested on).
- regard: softmax regression over the same embeddings of truecost's labelled sentences
  (src/truecost/review/probes/regard_train.jsonl); accuracy by 5-fold cross-validation.

- verdict: logistic regression over the MiniLM embeddings of a request and of the non-refusal part of its answer
  (`truecost.review.verdict.verdict_features`), on the answers the security pipeline leaves to it (not refusals, not
  benign requests): truecost's written and SmolLM2 labelled answers (probes/labelled_verdicts*.jsonl, without the
  fresh set) and JailbreakBench's 300 human-labelled real answers (bench/data/jailbreakbench). Its regularisation is
  chosen, and its accuracy measured, by 5-fold cross-validation on JailbreakBench grouped by behaviour (no behaviour
  in both the training and the test fold; truecost's answers in every training fold); then the whole pipeline is
  scored on the fresh set (probes/labelled_verdicts_fresh.jsonl), which no part of it was trained or tuned on.

Writes src/truecost/review/probes/{toxicity,regard,verdict}_minilm.json.
Run: `.venv/bin/python bench/review_train_scorers.py [--only verdict]`
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut, StratifiedKFold, cross_val_predict

ROOT = Path(__file__).resolve().parents[1]
PROBES = ROOT / "src" / "truecost" / "review" / "probes"
TOXIGEN = ROOT.parent / "shared" / "data" / "review_sample" / "toxigen" / "demonstrations"


def embed(texts: list[str]) -> np.ndarray:
    from truecost.route.embeddings import MiniLMEmbedder

    return MiniLMEmbedder().transform(texts)


def toxigen_rows() -> tuple[list[str], list[int], list[str]]:
    texts, labels, groups = [], [], []
    for f in sorted(TOXIGEN.rglob("*.txt")):
        hate = f.name.startswith("hate_")
        group = f.stem.replace("hate_", "").replace("neutral_", "").replace("_sentences", "")
        for line in f.read_text(encoding="utf-8").splitlines():
            line = line.strip().lstrip("-").strip()
            if line:
                texts.append(line)
                labels.append(int(hate))
                groups.append(group)
    return texts, labels, groups


def save(name: str, model: LogisticRegression, classes: list[str], about: dict[str, object]) -> None:
    data = {"classes": classes, "coef": model.coef_.round(6).tolist(), "intercept": model.intercept_.round(6).tolist(),
            "embedder": "all-MiniLM-L6-v2", "about": about}
    (PROBES / f"{name}.json").write_text(json.dumps(data) + "\n", encoding="utf-8")


JBB = ROOT / "bench" / "data" / "jailbreakbench" / "judge-comparison.csv"


def verdict_rows(rows: list[tuple[str, str, bool | None]]) -> tuple[np.ndarray, list[bool]]:
    """(features, left to the classifier?) for (request, answer, harmful) rows, as the pipeline would see them."""
    from truecost.review.compliance import SignalScorer
    from truecost.review.refusal import read_answer
    from truecost.review.verdict import _from_signals, verdict_features

    scorer = SignalScorer()
    readings = [read_answer(answer) for _, answer, _ in rows]
    signals, req, rem = scorer.signals_and_vectors([r[0] for r in rows], [r.remainder for r in readings])
    left = [reading.stance in ("none", "partial") and getattr(_from_signals(sig, harmful), "succeeded", None)
            is not False for reading, sig, (_, _, harmful) in zip(readings, signals, rows, strict=True)]
    return verdict_features(signals, readings, req, rem), left


def pipeline_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = int(((predicted == 1) & (truth == 1)).sum())
    fp = int(((predicted == 1) & (truth == 0)).sum())
    fn = int(((predicted == 0) & (truth == 1)).sum())
    return {"agreement": round(float(np.mean(predicted == truth)), 4), "precision": round(tp / max(1, tp + fp), 4),
            "recall": round(tp / max(1, tp + fn), 4), "fpr": round(fp / max(1, int((truth == 0).sum())), 4)}


def train_verdict() -> None:
    import csv

    from sklearn.model_selection import GroupKFold

    def labelled(name: str) -> list[dict]:
        return [json.loads(line) for line in (PROBES / name).read_text(encoding="utf-8").splitlines() if line.strip()]

    own = labelled("labelled_verdicts.jsonl") + labelled("labelled_verdicts_heldout.jsonl")
    fresh = labelled("labelled_verdicts_fresh.jsonl")
    with JBB.open(encoding="utf-8", newline="") as handle:
        jbb = list(csv.DictReader(handle))
    xo, lo = verdict_rows([(r["request"], r["answer"], r["harmful_request"]) for r in own])
    yo = np.array([r["attack_succeeded"] for r in own], int)
    xj, lj = verdict_rows([(r["goal"], r["target_response"], True) for r in jbb])
    yj = np.array([r["human_majority"] == "1" for r in jbb], int)
    xf, lf = verdict_rows([(r["request"], r["answer"], r["harmful_request"]) for r in fresh])
    yf = np.array([r["attack_succeeded"] for r in fresh], int)
    lo_, lj_, lf_ = np.array(lo), np.array(lj), np.array(lf)
    groups = [r["goal"] for r in jbb]

    def cross_validated(c: float) -> np.ndarray:
        predicted = np.zeros_like(yj)
        model = LogisticRegression(C=c, max_iter=5000)
        for train, test in GroupKFold(5).split(xj, yj, groups):
            train = train[lj_[train]]
            model.fit(np.vstack([xo[lo_], xj[train]]), np.concatenate([yo[lo_], yj[train]]))
            predicted[test] = model.predict(xj[test]) * lj_[test]  # what the pipeline left to it; the rest: no
        return predicted

    by_c = {c: pipeline_scores(cross_validated(c), yj) for c in (0.3, 1.0, 3.0, 10.0)}
    best = max(by_c, key=lambda c: by_c[c]["agreement"])
    model = LogisticRegression(C=best, max_iter=5000)
    model.fit(np.vstack([xo[lo_], xj[lj_]]), np.concatenate([yo[lo_], yj[lj_]]))
    on_fresh = pipeline_scores(model.predict(xf) * lf_, yf)
    save("verdict_minilm", model, ["failed", "succeeded"], {
        "trained_on": "truecost's labelled answers (probes/labelled_verdicts.jsonl, labelled_verdicts_heldout.jsonl) "
                      "and JailbreakBench's judge comparison (Chao et al. 2024, MIT; 300 real answers, human "
                      "majority), the answers the pipeline leaves to the classifier",
        "items": int(lo_.sum() + lj_.sum()), "C": best,
        "jailbreakbench_grouped_cv5_pipeline": by_c[best], "fresh_heldout_pipeline": on_fresh})
    for c, figures in by_c.items():
        print(f"verdict C={c}: JailbreakBench grouped 5-fold, whole pipeline: {figures}")
    print(f"verdict: chose C={best}; trained on {int(lo_.sum() + lj_.sum())} answers; fresh held-out set, whole "
          f"pipeline: {on_fresh}")


def main() -> int:
    if "--only" in sys.argv and sys.argv[-1] == "verdict":
        train_verdict()
        return 0
    if not TOXIGEN.is_dir():
        print(f"need {TOXIGEN}", file=sys.stderr)
        return 2
    texts, labels, groups = toxigen_rows()
    x, y = embed(texts), np.array(labels)
    # ToxiGen's neutral statements are mostly facts, its hateful ones generalisations ("they are..."); truecost's
    # neutral and positive sentences about people are added as non-toxic so that a kind generalisation is not
    # scored toxic for its shape alone. They are in every training fold; the folds test on ToxiGen only.
    regard = [json.loads(line) for line in (PROBES / "regard_train.jsonl").read_text().splitlines() if line.strip()]
    extra = embed([r["text"] for r in regard if r["regard"] != "negative"])
    model = LogisticRegression(C=4.0, max_iter=2000)
    pred = np.zeros_like(y)
    for train, test in LeaveOneGroupOut().split(x, y, groups):
        model.fit(np.vstack([x[train], extra]), np.concatenate([y[train], np.zeros(len(extra), int)]))
        pred[test] = model.predict(x[test])
    acc = float(np.mean(pred == y))
    tp = int(np.sum((pred == 1) & (y == 1)))
    precision, recall = tp / max(1, int(pred.sum())), tp / max(1, int(y.sum()))
    model.fit(np.vstack([x, extra]), np.concatenate([y, np.zeros(len(extra), int)]))
    save("toxicity_minilm", model, ["not_toxic", "toxic"], {
        "trained_on": "ToxiGen human-written demonstrations (Hartvigsen et al. 2022), shared review_sample, plus "
                      "truecost's neutral and positive sentences about people (probes/regard_train.jsonl)",
        "items": len(y), "leave_one_group_out_accuracy": round(acc, 4), "precision": round(precision, 4),
        "recall": round(recall, 4), "groups": len(set(groups))})
    print(f"toxicity: {len(y)} statements, {len(set(groups))} groups; leave-one-group-out accuracy {acc:.3f}, "
          f"precision {precision:.3f}, recall {recall:.3f}")
    rows = [json.loads(line) for line in (PROBES / "regard_train.jsonl").read_text().splitlines() if line.strip()]
    classes = ["negative", "neutral", "positive"]
    rx, ry = embed([r["text"] for r in rows]), np.array([classes.index(r["regard"]) for r in rows])
    model = LogisticRegression(C=4.0, max_iter=2000)
    pred = cross_val_predict(model, rx, ry, cv=StratifiedKFold(5, shuffle=True, random_state=0))
    racc = float(np.mean(pred == ry))
    model.fit(rx, ry)
    save("regard_minilm", model, classes, {"trained_on": "truecost's labelled sentences (probes/regard_train.jsonl)",
                                           "items": len(ry), "cv5_accuracy": round(racc, 4)})
    print(f"regard: {len(ry)} sentences; 5-fold accuracy {racc:.3f}")
    train_verdict()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    raise SystemExit(main())
