"""The same run on every executor gives the same output, byte for byte (this process, a process pool, Ray)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.curate.textgen import article
from truecost.curate.document import Document
from truecost.curate.pipeline import CurateRun, run_curate
from truecost.curate.settings import CurateSettings

OUTPUT_FILES = ("removed.jsonl", "duplicates.jsonl", "bad_input.jsonl", "manifest.json")


def corpus(n: int = 60) -> list[Document]:
    """Articles with exact copies, near copies, PII, a French one and a short one: every step has work."""
    docs = []
    for i in range(n):
        text = article(f"topic{i}")
        if i % 7 == 0:
            text += f"\nContact the office at person{i}@example.com for more details about this."
        docs.append(Document(f"d{i}", text, {"n": i}))
    docs.append(Document("exact-copy", docs[3].text, {}))
    docs.append(Document("near-copy", docs[5].text.replace("The ", "A ", 1), {}))
    docs.append(Document("fr", "Le conseil municipal a décidé que la nouvelle bibliothèque ouvrira au printemps "
                               "prochain, et les habitants sont invités à la fête."))
    docs.append(Document("short", "This line is too short to be a document, although it is English text."))
    return docs


def output_bytes(folder: Path) -> dict[str, bytes]:
    """Every output file that must not depend on the engine (the report holds timings, so it is left out)."""
    files = {name: (folder / name).read_bytes() for name in OUTPUT_FILES}
    files.update({str(p.relative_to(folder)): p.read_bytes() for p in sorted((folder / "kept").rglob("*"))
                  if p.is_file()})
    return files


def fingerprint(run: CurateRun) -> dict[str, Any]:
    return {"rules": [dict(st.removed_by_rule) for st in run.stats],
            "changes": [{k: v for k, v in st.changes.items() if "pairs" not in k and "skipped" not in k}
                        for st in run.stats]}


def test_local_engine_removes_with_every_step(tmp_path: Path) -> None:
    run = run_curate([], CurateSettings(), docs=corpus(), output_dir=tmp_path / "out")
    steps = {r.id: r.step for r in run.removals}
    assert steps["exact-copy"] == "exact" and steps["near-copy"] == "near"
    assert steps["fr"] == "language" and steps["short"] == "quality"
    kept = run.result.kept
    assert len(kept) == 64 - 5 == run.docs_out  # the four above and one article with repeated 5-grams (d33)
    assert run.stats[1].changes["email"] == 9
    assert all("@example.com" not in d.text for d in kept) and kept[0].meta == {"id": "d0", "n": 0}
    near = next(r for r in run.duplicates() if r["id"] == "near-copy")
    assert near["kept"] == "d5" and near["similarity"] >= 0.7


def write_corpus(folder: Path, shards: int = 3) -> list[str]:
    """The corpus as JSONL shards (one of them gzipped), so runs read the same files."""
    import gzip
    import json

    folder.mkdir(parents=True, exist_ok=True)
    docs = corpus()
    paths = []
    for k in range(shards):
        lines = "".join(json.dumps({"id": d.id, "text": d.text, **d.meta}) + "\n" for d in docs[k::shards])
        path = folder / (f"part{k}.jsonl.gz" if k == 0 else f"part{k}.jsonl")
        path.write_bytes(gzip.compress(lines.encode()) if k == 0 else lines.encode())
        paths.append(str(path))
    return paths


def test_process_pool_equals_single_process(tmp_path: Path) -> None:
    inputs = write_corpus(tmp_path / "in")
    one = run_curate(inputs, CurateSettings(), output_dir=tmp_path / "one")
    pool = run_curate(inputs, CurateSettings(), workers=2, output_dir=tmp_path / "pool")
    assert output_bytes(tmp_path / "pool") == output_bytes(tmp_path / "one")
    assert fingerprint(pool) == fingerprint(one)


def test_progress_reports_every_task_once(tmp_path: Path) -> None:
    seen: dict[str, list[tuple[int, int]]] = {}
    run_curate([], CurateSettings(steps=["normalize", "quality", "exact"]), docs=corpus(), output_dir=tmp_path / "o",
               progress=lambda label, done, total: seen.setdefault(label, []).append((done, total)))
    assert seen["normalize"] == [(1, 1)] and seen["quality + exact"] == [(1, 1)]
    assert {"normalize: boilerplate", "exact: exact", "write kept", "collect"} <= set(seen)


def test_boilerplate_stripped_in_one_pass_is_written_without_it(tmp_path: Path) -> None:
    # The strip is decided in the normalize pass and applied in the next; with no later step touching a document
    # its written text must still be the stripped one (a bug once wrote the old text back).
    footer = "Subscribe to our newsletter for weekly updates"
    docs = [Document(f"a{i}", f"Article {i} says something about topic {i}, at some length.\n{footer}")
            for i in range(12)]
    settings = CurateSettings(steps=["normalize"], normalize={"boilerplate_min_docs": 10})
    run = run_curate([], settings, docs=docs, output_dir=tmp_path / "out")
    assert run.stats[0].changes["boilerplate_lines_removed"] == 12
    assert [d.id for d in run.result.kept] == [d.id for d in docs]
    assert not any(footer in d.text for d in run.result.kept)
