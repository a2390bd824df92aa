"""The optional lm-eval backend: the command it runs, and its results and CPU cost landing in the review.

lm-eval is not installed in the project's environment (it lives in a venv of its own, see bench/review_vs_lmeval.py),
so the end-to-end test runs a stand-in interpreter that writes lm-eval 0.4's output files (results_*.json and
samples_<task>_*.jsonl) where `--output_path` says; bench/review_vs_lmeval.py and docs/review.md run the real one.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from truecost.errors import UserError
from truecost.ledger import Ledger
from truecost.review import run_review
from truecost.review.lm_eval_backend import command, lm_eval_python

STAND_IN = r'''#!{python}
import json, sys, time
from pathlib import Path
args = sys.argv[1:]
out = Path(args[args.index("--output_path") + 1]) / "model"
out.mkdir(parents=True)
tasks = args[args.index("--tasks") + 1].split(",")
sum(i * i for i in range(2_000_000))  # some CPU, so the child's cost is not zero
scores = {{"tc_local_mc": [1, 0, 1, 1], "tc_other": [0, 0, 1, 0]}}
results = {{t: {{"alias": t, "acc,none": sum(scores[t]) / 4, "acc_stderr,none": 0.25}} for t in tasks}}
(out / "results_2026-01-01T00-00-00.json").write_text(json.dumps({{"results": results,
    "n-samples": {{t: {{"original": 4, "effective": 4}} for t in tasks}}, "lm_eval_version": "stand-in"}}))
for t in tasks:
    rows = [{{"doc_id": i, "acc": float(a), "acc_norm": float(a)}} for i, a in enumerate(scores[t])]
    (out / f"samples_{{t}}_2026-01-01T00-00-00.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
'''


def test_command_is_lm_evals_cli_for_a_local_model(tmp_path: Path) -> None:
    cmd = command("py", tmp_path, ["mmlu", "hellaswag"], tmp_path / "out", include_path=tmp_path / "tasks",
                  limit=5, batch_size=8)
    assert cmd[:4] == ["py", "-m", "lm_eval", "--model"] and "mmlu,hellaswag" in cmd
    assert cmd[cmd.index("--include_path") + 1] == str(tmp_path / "tasks") and "--log_samples" in cmd
    with pytest.raises(UserError, match="no such interpreter"):
        lm_eval_python(str(tmp_path / "missing-python"))


def test_lm_eval_results_and_cost_land_in_the_review(tiny_model_dir: Path, tmp_path: Path) -> None:
    import sys

    stand_in = tmp_path / "lm-eval-python"
    stand_in.write_text(STAND_IN.format(python=sys.executable))
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IEXEC)
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    result = run_review(f"hf:{tiny_model_dir}", ["performance"], limit=1, max_new_tokens=2, ledger=ledger,
                        tasks=["tc_local_mc", "tc_other"], lm_eval_python=str(stand_in), out_dir=tmp_path / "out")
    acc = result.metric("lm_eval.tc_local_mc.acc")
    assert acc.value == 0.75 and acc.n == 4 and acc.ci_method == "wilson"
    assert result.metric("lm_eval.tc_other.acc").value == 0.25
    assert "lm_eval" in result.suites and result.cost["lm_eval_cpu_seconds"] > 0
    run = ledger.get_run(result.run_id or "")
    assert run.results["headline"]["lm_eval.tc_local_mc.acc"] == 0.75
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["suite_results"]["lm_eval"]["details"]["results"]["tc_local_mc"]["acc,none"] == 0.75
