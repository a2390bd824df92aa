"""`truecost curate` as a user runs it: a real subprocess over JSONL, Parquet and folders with bad records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.curate.textgen import article
from truecost.curate.dedup import NearDedupParams
from truecost.ledger import Ledger

TOPICS = ["library", "bridge", "harbour", "orchard", "railway", "museum", "theatre", "stadium"]


def truecost(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "truecost", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture()
def messy_jsonl(tmp_path: Path) -> Path:
    """Eight good articles, one exact copy, PII, and every kind of bad record (17 lines)."""
    lines = [json.dumps({"id": f"doc-{t}", "text": article(t), "source": "paper"}).encode() for t in TOPICS]
    lines.append(json.dumps({"id": "copy-of-library", "text": article("library"), "source": "mirror"}).encode())
    pii = article("garden") + "\nPlease write to mayor@example.org with any questions about the garden."
    lines.append(json.dumps({"id": "pii", "text": pii}).encode())
    lines.append(b'{"id": "broken", "text": "no closing brace"')                        # malformed JSON
    latin1 = json.dumps({"id": "latin1", "text": "caf\u00e9 " + article("cafe")}).encode()
    lines.append(latin1.replace(b"\\u00e9", b"\xe9"))                                  # invalid UTF-8
    lines.append(json.dumps({"id": "empty", "text": "   "}).encode())                     # empty
    lines.append(json.dumps({"id": "no-text", "body": "text under another key"}).encode())  # missing field
    lines.append(json.dumps({"id": "huge", "text": article("x") * 40}).encode())          # over max_doc_bytes
    lines.append(b"[1, 2, 3]")                                                             # not an object
    lines.append(json.dumps({"id": "doc-bridge", "text": article("canal")}).encode())     # repeated id
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture()
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text('max_doc_bytes = 20000\nsteps = ["normalize", "pii", "language", "quality", "exact", "near"]\n'
                    "[quality.c4]\nmin_sentences = 3\n", encoding="utf-8")
    return path


def test_jsonl_end_to_end_with_bad_records(messy_jsonl: Path, recipe: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = truecost("curate", str(messy_jsonl), "--output", str(out), "--recipe", str(recipe), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # one JSON document, nothing else on stdout

    assert report["input"]["bad_input"] == {"duplicate_id": 1, "empty_text": 1, "invalid_utf8": 1,
                                            "malformed_json": 1, "missing_text_field": 1, "not_an_object": 1,
                                            "too_large": 1}
    kept = read_jsonl(out / "kept" / "in.jsonl")
    removed = read_jsonl(out / "removed.jsonl")
    kept_ids = {r["id"] for r in kept}
    removed_ids = {r["id"] for r in removed}
    # Every one of the 17 input lines is either kept or removed with a reason; none is lost or counted twice.
    assert len(kept) + len(removed) == 17 and not kept_ids & removed_ids
    # The record with a repeated id keeps the user's id in the output (renamed doc-bridge#2 only in reports).
    assert [r["id"] for r in kept].count("doc-bridge") == 2
    assert all({"rule", "value", "threshold"} <= r["reason"].keys() for r in removed)
    by_id = {r["id"]: r for r in removed}
    assert by_id["copy-of-library"]["step"] == "exact"
    assert by_id["huge"]["reason"] == {"rule": "too_large", "value": len(article("x") * 40), "threshold": 20000,
                                       "where": "in.jsonl:15"}
    assert {"doc-library", "latin1", "pii"} <= kept_ids
    # User fields and ids are kept; PII is replaced.
    library = next(r for r in kept if r["id"] == "doc-library")
    assert library["source"] == "paper"
    assert "<EMAIL_1>" in next(r for r in kept if r["id"] == "pii")["text"]
    # duplicates.jsonl: one line per document in a duplicate cluster, saying which kept document it duplicates.
    dups = {r["id"]: r for r in read_jsonl(out / "duplicates.jsonl")}
    assert set(dups) == {"copy-of-library", "doc-library"}
    assert dups["copy-of-library"] == {"id": "copy-of-library", "cluster": "doc-library", "removed": True,
                                       "removed_by": "exact", "kept": "doc-library", "similarity": 1.0}
    assert dups["doc-library"]["removed"] is False and dups["doc-library"]["cluster"] == "doc-library"
    # The folder is whole: the completion marker is there, and train would accept it.
    from truecost.outputs import require_complete

    require_complete(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shards"][0]["kept"] == "kept/in.jsonl" and manifest["shards"][0]["docs_kept"] == len(kept)
    assert not (out / "_work").exists()
    # Dollars come from the estimate module for the removed tokens.
    from truecost.estimate import training_tokens_cost_usd

    saved = report["savings"]
    assert saved["usd_saved_per_training_run"] == pytest.approx(
        training_tokens_cost_usd(saved["tokens_removed"]), abs=1e-4)
    assert saved["tokens_removed"] == report["totals"]["tokens_in"] - report["totals"]["tokens_out"] > 0
    assert (out / "report.html").read_text(encoding="utf-8").startswith("<!doctype html>")
    runs = Ledger().list_runs(kind="curate")
    assert len(runs) == 1 and runs[0].id == report["ledger_run_id"] and runs[0].status == "completed"


def test_parquet_with_custom_fields(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"doc_id": i, "content": article(t), "lang_hint": "en"} for i, t in enumerate(TOPICS[:4])]
    rows.append({"doc_id": 99, "content": article(TOPICS[0]), "lang_hint": "en"})
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data.parquet")
    out = tmp_path / "out"
    result = truecost("curate", str(tmp_path / "data.parquet"), "-o", str(out), "--text-field", "content",
                      "--id-field", "doc_id", "--steps", "normalize,exact", "--json", "-q")
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out / "kept" / "data.parquet")
    assert table.column_names == ["doc_id", "content", "lang_hint"]
    assert table.column("doc_id").to_pylist() == [0, 1, 2, 3]
    assert read_jsonl(out / "removed.jsonl")[0]["id"] == "99"


def test_folder_of_text_files(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text(article("library"), encoding="utf-8")
    (folder / "sub" / "b.md").write_text(article("bridge"), encoding="utf-8")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n")
    (folder / "bad.txt").write_bytes(b"caf\xe9 " + article("museum").encode())
    out = tmp_path / "out"
    result = truecost("curate", str(folder), "-o", str(out), "--steps", "normalize,quality", "--json", "-q")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["input"]["bad_input"] == {"invalid_utf8": 1, "not_a_text_file": 1}
    assert (out / "kept" / "docs" / "a.txt").read_text(encoding="utf-8").startswith("The ")
    assert (out / "kept" / "docs" / "sub" / "b.md").exists()
    assert (out / "kept" / "docs" / "bad.txt").read_text(encoding="utf-8").startswith("caf\ufffd")


def test_dry_run_estimates_full_run(messy_jsonl: Path, tmp_path: Path) -> None:
    result = truecost("curate", str(messy_jsonl), "--dry-run", "--sample", "0.5", "--json", "-q")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    est = report["estimate_full_run"]
    assert report["dry_run"] is True and 0 < est["sample_documents"] < est["total_documents"] == 13
    assert est["scale"] == pytest.approx(est["total_bytes"] / est["sample_bytes"], rel=1e-3)
    assert est["cpu_seconds"] > 0 and est["cpu_cost_usd"] > 0
    assert not (tmp_path / "kept").exists()
    assert Ledger().list_runs(kind="curate")[0].name.startswith("dry-run")


def test_human_output(messy_jsonl: Path, tmp_path: Path) -> None:
    result = truecost("curate", str(messy_jsonl), "-o", str(tmp_path / "o"), "--steps", "quality")
    assert result.returncode == 0, result.stderr
    assert "saved: $" in result.stdout and "quality" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["missing.jsonl", "-o", "x"], "does not exist"),
    (["{input}", "-o", "x", "--steps", "quality,bogus"], "unknown step bogus"),
    (["{input}"], "--output DIR is required"),
    (["{input}", "-o", "x", "--engine", "spark"], "--engine must be local or ray"),
])
def test_user_mistakes_are_one_line(args: list[str], message: str, messy_jsonl: Path) -> None:
    result = truecost("curate", *[a.replace("{input}", str(messy_jsonl)) for a in args])
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("steps", ["normalize,exact,near", "exact,near"])
def test_duplicates_jsonl_scores_on_shared_sample(shared_data: Path, tmp_path: Path, steps: str) -> None:
    """The issue's scorer on the shared labelled sample, through the whole CLI (exact dedup before near: the
    path users run), and every near removal at or above the threshold from its kept document."""
    sample = shared_data / "dedup_sample"
    out = tmp_path / "out"
    result = truecost("curate", str(sample / "corpus.jsonl"), "-o", str(out), "--steps", steps, "--json", "-q")
    assert result.returncode == 0, result.stderr
    preds = tmp_path / "pred.jsonl"
    preds.write_text("".join(json.dumps({"id": r["id"], "pred_cluster": r["cluster"], "removed": r["removed"]}) + "\n"
                             for r in read_jsonl(out / "duplicates.jsonl")), encoding="utf-8")
    scored = subprocess.run([sys.executable, str(sample / "eval_dedup.py"), str(sample), str(preds)],
                            capture_output=True, text=True, check=True)
    score = json.loads(scored.stdout)
    assert score["pair_precision"] >= 0.99 and score["pair_recall"] >= 0.95 and score["removal_recall"] >= 0.97
    near = [r for r in read_jsonl(out / "duplicates.jsonl") if r["removed_by"] == "near"]
    assert near and min(r["similarity"] for r in near) >= NearDedupParams().threshold


def test_gzip_input_truncated_and_recipe_via_steps(tmp_path: Path) -> None:
    import gzip

    body = "".join(json.dumps({"id": f"a{i}", "text": article(f"t{i}")}) + "\n" for i in range(40)).encode()
    packed = gzip.compress(body)
    (tmp_path / "whole.jsonl.gz").write_bytes(packed)
    (tmp_path / "cut.jsonl.gz").write_bytes(packed[: len(packed) // 2])  # a download that stopped half-way
    (tmp_path / "r.toml").write_text('[curate]\nsteps = ["quality"]\n', encoding="utf-8")
    out = tmp_path / "out"
    result = truecost("curate", str(tmp_path / "whole.jsonl.gz"), str(tmp_path / "cut.jsonl.gz"), "-o", str(out),
                      "--steps", str(tmp_path / "r.toml"), "--json", "-q")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["steps_run"] == ["quality"]
    assert report["input"]["bad_input"]["unreadable_file"] == 1
    (warning,) = result.stderr.strip().splitlines()  # said, in one line, not only counted
    assert warning.startswith("warning: 1 input file(s) could not be read to the end")
    cut_docs = report["input"]["files"][1]["documents"]
    assert 0 < cut_docs < 40 and report["input"]["files"][0]["documents"] == 40
    for name, expected in (("whole.jsonl.gz", 40), ("cut.jsonl.gz", cut_docs)):
        with gzip.open(out / "kept" / name, "rt", encoding="utf-8") as fh:  # written back compressed
            assert sum(1 for _ in fh) == expected


def test_empty_input_is_an_error_and_all_bad_input_a_warning(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    result = truecost("curate", str(tmp_path / "empty.jsonl"), "-o", str(tmp_path / "o1"), "-q")
    assert result.returncode == 2 and "nothing was read" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\n[1]\n')
    result = truecost("curate", str(tmp_path / "bad.jsonl"), "-o", str(tmp_path / "o2"), "-q", "--json")
    assert result.returncode == 0 and "warning: no usable document" in result.stderr
    assert json.loads(result.stdout)["totals"]["docs_in"] == 0
    result = truecost("curate", str(tmp_path / "bad.jsonl"), "-o", str(tmp_path / "o3"), "--recipe", str(tmp_path))
    assert result.returncode == 2 and "is a folder" in result.stderr
