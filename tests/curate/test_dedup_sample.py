"""Near dedup on the shared labelled sample, scored by the sample's own scorer (run from the shared folder)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from truecost.curate.dedup import find_near_duplicates
from truecost.curate.document import Document


def test_near_dedup_meets_the_issue_targets_on_the_shared_sample(shared_data: Path, tmp_path: Path) -> None:
    sample = shared_data / "dedup_sample"
    if not (sample / "eval_dedup.py").exists():
        pytest.skip("dedup sample not present")
    rows = [json.loads(line) for line in (sample / "corpus.jsonl").open(encoding="utf-8")]
    docs = [Document(id=r["id"], text=r["text"]) for r in rows]

    result = find_near_duplicates(docs)

    duplicates = tmp_path / "duplicates.jsonl"
    with duplicates.open("w", encoding="utf-8") as out:
        for record in result.duplicate_records():
            out.write(json.dumps(record) + "\n")
    # duplicates.jsonl uses the issue's field names; the scorer reads `pred_cluster`.
    predictions = tmp_path / "predictions.jsonl"
    with predictions.open("w", encoding="utf-8") as out:
        for line in duplicates.open(encoding="utf-8"):
            record = json.loads(line)
            assert set(record) == {"id", "cluster", "removed"}
            out.write(json.dumps({"id": record["id"], "pred_cluster": record["cluster"],
                                  "removed": record["removed"]}) + "\n")
    scored = subprocess.run(
        [sys.executable, str(sample / "eval_dedup.py"), str(sample), str(predictions)],
        check=True, capture_output=True, text=True,
    )
    score = json.loads(scored.stdout)

    assert len(result.cluster_of) == len(rows)
    assert score["pair_precision"] >= 0.99, score
    assert score["pair_f1"] >= 0.95, score
    assert score["removal_recall"] >= 0.97, score
    # Every removal explains itself and points at a document that stays.
    kept = set(result.kept_ids)
    for reason in result.removed.values():
        assert reason["rule"] in {"near_duplicate"}
        assert reason["kept"] in kept
        assert reason["similarity"] >= reason["threshold"]
