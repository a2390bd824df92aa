"""Corpus scale: shards over fsspec, a run killed with kill -9 and restarted, outputs that appear whole, memory
that does not grow with the corpus, and a real two-node Ray cluster giving the local engine's output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.curate.test_engines import OUTPUT_FILES, output_bytes
from tests.curate.textgen import corpus_lines
from truecost.curate.pipeline import run_curate
from truecost.curate.settings import CurateSettings
from truecost.errors import UserError
from truecost.outputs import require_complete

SRC = str(Path(__file__).resolve().parents[2] / "src")


def write_shards(folder: Path, shards: int, docs_per_shard: int, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        lines = corpus_lines(docs_per_shard, seed=seed * 1000 + k, prefix=f"s{k}-")
        (folder / f"part{k:03d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def cli(*args: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-m", "truecost", "curate", *args, "--json", "-q"]


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[int, float, str]:
    """Exit code, peak RSS (MB) of the process from wait4, and its stdout."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        out.seek(0)
        return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, out.read().decode()


def test_fsspec_memory_filesystem_and_zstd(tmp_path: Path) -> None:
    """A URL works wherever a path does: zstd input and every output on fsspec's in-memory filesystem."""
    import fsspec
    import zstandard

    fs = fsspec.filesystem("memory")
    lines = corpus_lines(40, seed=3)
    with fs.open("/bucket/in/a.jsonl.zst", "wb") as fh:
        fh.write(zstandard.ZstdCompressor().compress(("\n".join(lines) + "\n").encode()))
    with fs.open("/bucket/in/b.jsonl", "wb") as fh:
        fh.write(("\n".join(corpus_lines(10, seed=4, prefix="b")) + "\n").encode())
    run = run_curate(["memory://bucket/in/*.jsonl*"], CurateSettings(steps=["exact", "near"]),
                     output_dir="memory://bucket/out")
    assert [s.name for s in run.shards] == ["a.jsonl.zst", "b.jsonl"]
    with fs.open("/bucket/out/kept/a.jsonl.zst", "rb") as fh:
        kept = zstandard.ZstdDecompressor().stream_reader(fh).read().decode().splitlines()
    removed = [json.loads(line) for line in fs.cat("/bucket/out/removed.jsonl").decode().splitlines()]
    assert len(kept) + sum(r["id"].startswith("d") for r in removed) == 40 and removed
    assert kept[0] == lines[0]  # unchanged records are copied byte for byte
    assert fs.exists("/bucket/out/_COMPLETE") and not fs.exists("/bucket/out/_work")


def test_empty_and_directory_inputs(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(UserError, match="nothing was read"):
        run_curate([tmp_path / "empty.jsonl"], CurateSettings(), output_dir=tmp_path / "out")
    from truecost.curate.settings import load_recipe

    with pytest.raises(UserError, match="is a folder"):
        load_recipe(tmp_path)


@pytest.mark.slow
def test_kill_9_then_rerun_gives_the_clean_output_and_skips_finished_shards(tmp_path: Path) -> None:
    inputs = write_shards(tmp_path / "in", shards=8, docs_per_shard=60)
    steps = ["--steps", "normalize,quality,exact,near"]
    clean = tmp_path / "clean"
    subprocess.run(cli(str(inputs / "*.jsonl"), "-o", str(clean), *steps), check=True, capture_output=True)

    out = tmp_path / "out"
    proc = subprocess.Popen(cli(str(inputs / "*.jsonl"), "-o", str(out), *steps), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    markers = out / "_work" / "done" / "pass0"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if markers.is_dir() and len(list(markers.glob("*.json"))) >= 2:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(markers.glob("*.json")))
    assert 2 <= finished < 8 + 1, finished
    with pytest.raises(UserError, match="incomplete"):
        require_complete(out)  # killed: the folder never looks finished

    rerun = subprocess.run(cli(str(inputs / "*.jsonl"), "-o", str(out), *steps), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["resume"]["tasks_skipped"] >= finished  # finished shards were not redone
    assert output_bytes(out) == output_bytes(clean)
    require_complete(out)


@pytest.mark.slow
def test_a_kill_while_writing_over_an_earlier_run_never_leaves_a_complete_looking_folder(tmp_path: Path) -> None:
    first = write_shards(tmp_path / "a", shards=1, docs_per_shard=50)
    second = write_shards(tmp_path / "b", shards=6, docs_per_shard=60, seed=9)
    out = tmp_path / "out"
    subprocess.run(cli(str(first / "*.jsonl"), "-o", str(out)), check=True, capture_output=True)
    require_complete(out)
    proc = subprocess.Popen(cli(str(second / "*.jsonl"), "-o", str(out)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "_work" / "done").exists() and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with pytest.raises(UserError, match="incomplete"):
        require_complete(out)
    assert not (out / "report.json").exists()  # the earlier run's outputs went before any new file was written


@pytest.mark.slow
def test_peak_memory_stays_flat_as_the_corpus_doubles(tmp_path: Path) -> None:
    """exact+near through the CLI: doubling the corpus (3 -> 6 MB) must not grow peak RSS with it."""
    rss = []
    for shards in (2, 4):
        inputs = write_shards(tmp_path / f"in{shards}", shards=shards, docs_per_shard=400)
        size = sum(p.stat().st_size for p in inputs.glob("*.jsonl"))
        rc, peak, text = run_measured(cli(str(inputs / "*.jsonl"), "-o", str(tmp_path / f"o{shards}"),
                                          "--steps", "exact,near"))
        assert rc == 0, text[-2000:]
        rss.append((size / 1e6, peak))
    (small_mb, small_rss), (big_mb, big_rss) = rss
    assert big_mb > 1.9 * small_mb
    # Holding the corpus would add at least its size again; streaming adds only the dedup decisions.
    assert big_rss - small_rss < 0.25 * (big_mb - small_mb) + 10, rss


def _wait_until_both_nodes_take_tasks(address: str) -> None:
    """Run one task on the second node from a short-lived driver, so the head's view of that node is current (a
    node can be registered before the head schedules onto it) and it has a warm worker."""
    import ray

    ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        @ray.remote(num_cpus=1)
        def node_id() -> str:
            return str(ray.get_runtime_context().get_node_id())

        second = ray.get(node_id.options(resources={"second_node": 1}).remote(), timeout=120)
        assert second != ray.get_runtime_context().get_node_id()
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_two_node_ray_cluster_equals_the_local_engine(tmp_path: Path) -> None:
    """A real Ray cluster of two nodes (two raylets, each with its own CPU and object store), joined through
    RAY_ADDRESS by the CLI: the same bytes as the local engine, tasks on both nodes, a driver that stays small."""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    small = write_shards(tmp_path / "small", shards=4, docs_per_shard=40)
    big = write_shards(tmp_path / "big", shards=8, docs_per_shard=40, seed=1)
    steps = ["--steps", "normalize,exact,near"]
    subprocess.run(cli(str(small / "*.jsonl"), "-o", str(tmp_path / "local"), *steps), check=True,
                   capture_output=True)
    env = {"PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "RAY_DEDUP_LOGS": "0"}
    old_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 80 << 20,
                                                           "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1, object_store_memory=80 << 20, resources={"second_node": 1})
        cluster.wait_for_nodes(timeout=60)
        _wait_until_both_nodes_take_tasks(cluster.address)
        ray_env = {"RAY_ADDRESS": cluster.address}
        rc, small_rss, text = run_measured(cli(str(small / "*.jsonl"), "-o", str(tmp_path / "ray"), *steps,
                                               "--engine", "ray"), ray_env)
        assert rc == 0, text[-3000:]
        report = json.loads(text[text.index("{"):])
        rc, big_rss, text = run_measured(cli(str(big / "*.jsonl"), "-o", str(tmp_path / "ray-big"), *steps,
                                             "--engine", "ray"), ray_env)
        assert rc == 0, text[-3000:]
        big_report = json.loads(text[text.index("{"):])
    finally:
        cluster.shutdown()
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    # SPREAD is Ray's best effort: on a loaded machine one short run may finish on the head alone, so the claim
    # is that the runs, between them, put tasks on both nodes.
    assert report["engine"] == "ray" and max(report["nodes"], big_report["nodes"]) == 2, (report, big_report)
    assert output_bytes(tmp_path / "ray") == output_bytes(tmp_path / "local")
    assert set(OUTPUT_FILES) <= {p.name for p in (tmp_path / "ray").iterdir()}
    assert big_rss - small_rss < 30, (small_rss, big_rss)  # twice the corpus, the same driver


def test_dedup_index_across_runs(tmp_path: Path) -> None:
    """--dedup-index through the pipeline: the second dataset's near copies of the first are removed, pointing
    at the indexed document, and the index grows by one segment per input shard."""
    import random

    from tests.curate.textgen import web_page

    rng = random.Random(5)
    pages = [web_page(rng, 200) for _ in range(6)]
    first = tmp_path / "first.jsonl"
    first.write_text("".join(json.dumps({"id": f"a{i}", "text": p}) + "\n" for i, p in enumerate(pages)))
    copy = pages[2].split(" ")
    copy[10] = "altered"
    second = tmp_path / "second.jsonl"
    second.write_text(json.dumps({"id": "b0", "text": " ".join(copy)}) + "\n"
                      + json.dumps({"id": "b1", "text": web_page(rng, 200)}) + "\n")
    settings = CurateSettings(steps=["exact", "near"], dedup_index_dir=tmp_path / "index")
    run_curate([first], settings, output_dir=tmp_path / "o1")
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["docs"] == 6 and len(manifest["segments"]) == 1
    run = run_curate([second], settings, output_dir=tmp_path / "o2")
    removed = {r.id: r for r in run.removals}
    assert set(removed) == {"b0"} and removed["b0"].reason["kept"] == "a2"
    assert json.loads((tmp_path / "index" / "manifest.json").read_text())["docs"] == 8
