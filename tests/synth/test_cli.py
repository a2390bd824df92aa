"""`truecost synth` as a user runs it: a real subprocess, its exit codes, one-line errors, --json, and a kill -9
that leaves no complete-looking output folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.synth.fake_openai import ServerState, serve
from truecost.errors import UserError
from truecost.ledger import Ledger


def truecost(*args: str, ledger: Path | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["--ledger", f"sqlite:///{ledger}"] if ledger else []
    return subprocess.run([sys.executable, "-m", "truecost", *prefix, "synth", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})


def _one_line_error(result: subprocess.CompletedProcess[str], text: str, *, after_progress: bool = False) -> None:
    """Exit 2 and one `error:` line; before any work started, that line is all of stderr."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and text in lines[-1] and "Traceback" not in result.stderr
    assert sum(line.startswith("error:") for line in lines) == 1
    if not after_progress:
        assert len(lines) == 1, result.stderr


def test_help_explains_the_command() -> None:
    result = truecost("--help")
    assert result.returncode == 0
    for word in ("qa", "evolve", "paraphrase", "--generator", "--max-usd", "--eval", "--judge", "--json"):
        assert word in result.stdout


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, seed_docs: Path) -> None:
    _one_line_error(truecost(str(tmp_path / "nope.jsonl"), "-g", "openai:http://127.0.0.1:9/v1#m"),
                    f"seed file {tmp_path / 'nope.jsonl'} does not exist")
    bad = tmp_path / "bad.toml"
    bad.write_text('task = "qa"\nprompt = "Doc: {document"\n')
    _one_line_error(truecost(str(seed_docs), "-g", "openai:http://127.0.0.1:9/v1#m", "--template", str(bad)),
                    "malformed template")


def test_bad_settings_are_one_line_errors(seed_docs: Path) -> None:
    from truecost.synth import make_settings, run_synth

    with pytest.raises(UserError) as err:
        make_settings(generator="openai:http://127.0.0.1:9/v1#m", seeds=[str(seed_docs)], task="poem")
    assert "task" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="generator 'gpt4' not understood"):
        run_synth(make_settings(generator="gpt4", seeds=[str(seed_docs)]))


def test_unreachable_endpoint_is_one_line_after_retries(seed_docs: Path, tmp_path: Path) -> None:
    from tests.synth.fake_openai import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    result = truecost(str(seed_docs), "-g", f"openai:{url}#m", "--retries", "1", "-o", str(tmp_path / "out"))
    _one_line_error(result, f"endpoint {url} unreachable after 2 tries", after_progress=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_grounded_qa_from_the_standard_library_through_an_endpoint(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    with serve() as (url, state):
        result = truecost("builtin:stdlib", "-g", f"openai:{url}#gpt-4o-mini", "--max-seeds", "8", "-o",
                          str(tmp_path / "out"), "--json", ledger=ledger)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert state.requests == 8 and report["seeds"]["used"] == 8 and report["accepted"] > 0
    rows = (tmp_path / "out" / "kept" / "examples.jsonl").read_text().splitlines()
    assert len(rows) == report["accepted"]
    assert all(json.loads(r)["provenance"]["seed_id"].startswith("stdlib:") for r in rows)
    run = Ledger(f"sqlite:///{ledger}").get_run(report["run_id"])
    assert run.kind == "synth" and run.results["cost_per_accepted_usd"] == report["cost"]["cost_per_accepted_usd"]


def test_kill_9_mid_run_leaves_no_complete_looking_folder(seed_docs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    ledger = tmp_path / "ledger.db"
    with serve(ServerState(delay_s=0.5)) as (url, state):
        args = [sys.executable, "-m", "truecost", "--ledger", f"sqlite:///{ledger}", "synth", str(seed_docs), "-g",
                f"openai:{url}#gpt-4o-mini", "--concurrency", "1", "-o", str(out)]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while state.requests < 2 and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None, "the run finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert not out.exists()
    assert not any((p / "_COMPLETE").exists() for p in tmp_path.glob(".out*"))
    (run,) = Ledger(f"sqlite:///{ledger}").list_runs(kind="synth")
    assert run.status in ("running", "lost")
