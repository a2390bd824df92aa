"""Train the review's offline text scorers and measure their accuracy (numbers go in docs/review.md).

- toxicity: logistic regression over all-MiniLM-L6-v2 embeddings of ToxiGen's human-written statements
  (shared/data/review_sample/toxigen/demonstrations: hate_* = toxic, neutral_* = not); accuracy by leaving each
  target group out in turn (the classifier never saw a statement about the group it is tested on).
- regard: softmax regression over the same embeddings of truecost's labelled sentences
  (src/truecost/review/probes/regard_train.jsonl); accuracy by 5-fold cross-validation.

Writes src/truecost/review/probes/{toxicity,regard}_minilm.json. Run: `.venv/bin/python bench/review_train_scorers.py`
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


def main() -> int:
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
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    raise SystemExit(main())
