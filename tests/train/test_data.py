"""Data in: built-in docstrings, JSONL, Parquet and complete `truecost curate` output; packing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from truecost.errors import UserError
from truecost.outputs import clear_complete, mark_complete
from truecost.train.data import EOS_TOKEN, pack, read_texts, split_documents, train_tokenizer


def test_builtin_text_is_real_prose_from_the_standard_library() -> None:
    docs = read_texts("builtin:python-docs", max_chars=50_000)
    assert sum(len(d) for d in docs) >= 50_000
    assert any("Return" in d for d in docs)  # docstrings read like docstrings


def test_jsonl_parquet_and_a_curate_output_folder(tmp_path: Path, shared_data: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    corpus = shared_data / "dedup_sample" / "corpus.jsonl"
    docs = read_texts(str(corpus), max_chars=100_000)
    first = json.loads(corpus.open(encoding="utf-8").readline())["text"]
    assert docs[0] == first and sum(len(d) for d in docs) >= 100_000

    pq.write_table(pa.table({"body": docs[:5]}), tmp_path / "x.parquet")
    assert read_texts(str(tmp_path / "x.parquet"), text_field="body") == docs[:5]
    with pytest.raises(UserError, match="data.text_field"):
        read_texts(str(tmp_path / "x.parquet"))

    # The shape `truecost curate -o out` writes: kept/ beside what was removed, and a report.
    out = tmp_path / "curated"
    (out / "kept").mkdir(parents=True)
    (out / "kept" / "corpus.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs[:3]))
    (out / "removed.jsonl").write_text(json.dumps({"text": "REMOVED"}) + "\n")
    (out / "report.json").write_text("{}")
    # Without curate's completion marker the folder may be a kill mid-write: refused, naming the folder.
    with pytest.raises(UserError, match=r"curate output folder .*curated is incomplete \(no _COMPLETE marker\)"):
        read_texts(str(out))
    mark_complete(out)
    assert read_texts(str(out)) == docs[:3]
    (out / "report.json").unlink()
    (out / "manifest.json").write_text("{}")  # curate's other mark of its folders
    clear_complete(out)
    with pytest.raises(UserError, match="incomplete"):
        read_texts(str(out))

    with pytest.raises(UserError, match="does not exist"):
        read_texts(str(tmp_path / "missing.jsonl"))


def test_split_holds_out_whole_documents() -> None:
    docs = [f"document {i} " * (i + 1) for i in range(50)]
    train, val = split_documents(docs, 0.1, seed=0)
    assert not set(train) & set(val) and sorted(train + val) == sorted(docs)
    assert 0.1 <= sum(map(len, val)) / sum(map(len, docs)) < 0.2


def test_packing_joins_documents_with_eos_and_wastes_no_padding() -> None:
    docs = read_texts("builtin:python-docs", max_chars=30_000)
    tokenizer = train_tokenizer(docs, 300)
    blocks = pack(docs, tokenizer, 32)
    eos = tokenizer.eos_token_id
    stream = [t for ids in tokenizer(docs, add_special_tokens=False)["input_ids"] for t in ids + [eos]]
    assert blocks.shape == (len(stream) // 32, 32)
    assert blocks.flatten().tolist() == stream[: blocks.numel()]
    assert tokenizer.convert_ids_to_tokens(tokenizer.eos_token_id) == EOS_TOKEN
