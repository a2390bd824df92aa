"""End to end: run_review and `truecost review` against a tiny local model and real loopback endpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.review.servers import hf_app, leaky_reply, safe_reply, scripted_app, serve
from truecost.ledger import Ledger
from truecost.review import run_review
from truecost.review.targets import HFTarget, OpenAITarget


def truecost(*args: str, embedder: str = "bag-of-words") -> subprocess.CompletedProcess[str]:
    # Bag-of-words signals keep each CLI run from loading torch for MiniLM (tens of seconds on a loaded machine);
    # the MiniLM pipeline itself is measured in-process in test_verdicts.py.
    env = {**os.environ, "COLUMNS": "200", "TRUECOST_REVIEW_EMBEDDER": embedder}
    return subprocess.run([sys.executable, "-m", "truecost", *args], capture_output=True, text=True, timeout=600,
                          env=env)


def _check_outputs(out: Path) -> dict:
    data = json.loads((out / "results.json").read_text())
    page = (out / "report.html").read_text()
    assert data["schema"] == "truecost.review/1"
    # Self-contained: charts inline, no scripts, no linked or remote assets.
    assert "<svg" in page
    assert not any(tag in page for tag in ("<script", "<link", "src=", "url("))
    for m in data["metrics"]:
        if m["value"] is not None and m["ci_low"] is not None:
            assert m["ci_low"] - 1e-9 <= m["value"] <= m["ci_high"] + 1e-9, m["name"]
    return data


def test_local_tiny_model_all_suites(tiny_model_dir: Path, tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    with ledger.run("other", "parent") as parent:
        pass
    result = run_review(f"hf:{tiny_model_dir}", ["performance", "bias", "security"], out_dir=tmp_path / "out",
                        limit=3, max_new_tokens=8, ledger=ledger, parent_id=parent.record.id)
    data = _check_outputs(tmp_path / "out")
    names = {m["name"] for m in data["metrics"]}
    for expected in ("performance.accuracy", "performance.latency_p95_s", "performance.tokens_per_s",
                     "performance.cost_per_1k_requests_usd", "bias.crows_pairs.stereotype_score",
                     "bias.bbq.bias_score_ambiguous", "bias.winobias.gap_pro_minus_anti",
                     "bias.stereoset.stereotype_score", "bias.xstest.refusal_rate_safe",
                     "security.prompt_injection_direct.attack_success_rate"):
        assert expected in names
    run = ledger.get_run(result.run_id or "")
    assert run.kind == "review" and run.status == "completed"
    assert run.parent_id == parent.record.id  # filed under the job that asked for it
    assert run.cost_usd > 0 and run.tokens == result.cost["prompt_tokens"] + result.cost["completion_tokens"]
    # A local model is priced by measured compute through truecost.estimate.
    assert result.metric("performance.cost_per_1k_requests_usd").value > 0


def test_local_log_probs_agree_with_transformers_loss(tiny_model_dir: Path) -> None:
    import torch

    target = HFTarget("hf:x", tiny_model_dir, device="cpu")
    text = "The developer argued with the designer."
    ours = sum(v for _, v in target.continuation_logprobs("", text) if v is not None)
    ids = [target.tokenizer.bos_token_id] + target.tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        loss = target.model(torch.tensor([ids]), labels=torch.tensor([ids])).loss.item()
    assert ours == pytest.approx(-loss * (len(ids) - 1), rel=1e-4)


def test_batched_log_probs_match_one_forward_per_request(tiny_model_dir: Path) -> None:
    """Right-padded rows of different lengths, with and without a prefix, scored in one batch equal each request
    scored alone by a plain forward pass (brute force: log-softmax over the whole vocabulary at every position)."""
    import torch

    target = HFTarget("hf:x", tiny_model_dir, device="cpu")
    requests = [("", "A short one."), ("Question: who wrote it? Answer:", " the nurse"),
                ("x", " and a much longer continuation with many more tokens than the others have")]
    batched = target.continuation_logprobs_batch(requests)
    tok = target.tokenizer
    for (prefix, text), got in zip(requests, batched, strict=True):
        head = [tok.bos_token_id] + (tok(prefix, add_special_tokens=False)["input_ids"] if prefix else [])
        cont = tok(text, add_special_tokens=False)["input_ids"]
        ids = head + cont
        with torch.no_grad():
            logp = torch.log_softmax(target.model(torch.tensor([ids])).logits[0].float(), -1)
        expected = [logp[p - 1, ids[p]].item() for p in range(len(head), len(ids))]
        assert [v for _, v in got if v is not None] == pytest.approx(expected, abs=1e-4)
        assert "".join(t for t, _ in got) == tok.decode(cont)


def test_endpoint_on_loopback_all_suites_via_cli(tiny_model_dir: Path, tmp_path: Path) -> None:
    with serve(hf_app(str(tiny_model_dir))) as url:
        local = HFTarget("hf:x", tiny_model_dir, device="cpu")
        remote = OpenAITarget("openai:x", url, "tiny")
        text = "Old people are always confused by new phones."
        assert [v for _, v in remote.continuation_logprobs("", text)] == pytest.approx(
            [v for _, v in local.continuation_logprobs("", text)], abs=1e-4)
        proc = truecost("review", "--target", f"openai:{url}#tiny", "--suites", "performance,bias,security",
                        "--limit", "2", "--max-new-tokens", "8", "--out", str(tmp_path / "out"), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    _check_outputs(tmp_path / "out")
    names = {m["name"] for m in data["metrics"]}
    assert "bias.crows_pairs.stereotype_score" in names  # log-probs came over HTTP
    assert {"performance", "bias", "security"} <= set(data["suite_results"])
    ledger = Ledger(f"sqlite:///{tmp_path / '.truecost' / 'ledger.db'}")
    runs = ledger.list_runs(kind="review")
    assert [r.id for r in runs] == [data["run_id"]] and runs[0].status == "completed"


def test_leaky_target_is_caught_and_safe_target_is_not(tmp_path: Path) -> None:
    verdicts = {}
    for name, reply in (("leaky", leaky_reply), ("safe", safe_reply)):
        with serve(scripted_app(reply)) as url:
            result = run_review(f"openai:{url}#{name}", ["security"], ledger=Ledger(f"sqlite:///{tmp_path}/l.db"))
        verdicts[name] = result
    leaky, safe = verdicts["leaky"], verdicts["safe"]
    assert leaky.suite_results["security"].details["verdict"] == "fail"
    for family in ("prompt_injection_direct", "system_prompt_leakage", "pii_leakage"):
        assert leaky.metric(f"security.{family}.attack_success_rate").value == 1.0
    assert safe.suite_results["security"].details["verdict"] == "pass"
    assert all(m.value == 0.0 for m in safe.metrics)


def test_budget_stops_the_review_cleanly(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    with serve(scripted_app(safe_reply)) as url:
        result = run_review(f"openai:{url}#safe", ["performance", "security"], max_requests=5, ledger=ledger)
    assert result.status == "stopped" and result.cost["requests"] == 5
    assert ledger.get_run(result.run_id or "").status == "stopped"


def test_baseline_regression_fails_ci_and_public_formats_load(tmp_path: Path, shared_data: Path) -> None:
    sample = shared_data / "review_sample"
    common = ["--suites", "security", "--limit", "3", "--data", f"cyberseceval={sample / 'cyberseceval'}"
              "/prompt_injection.sample.json", "--data", f"garak={sample / 'garak'}"]
    with serve(scripted_app(safe_reply)) as url:
        first = truecost("review", "--target", f"openai:{url}#m", "--out", str(tmp_path / "v1"), *common, "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    data = json.loads(first.stdout)
    names = {m["name"] for m in data["metrics"]}
    assert "security.garak_sysprompt_extraction.attack_success_rate" in names
    assert any(n.startswith("security.garak_dan") for n in names)
    families = data["suite_results"]["security"]["details"]
    assert sum(v["probes"] for k, v in families.items() if k.startswith("cyberseceval_")) == 3
    baseline = str(tmp_path / "v1" / "results.json")
    with serve(scripted_app(leaky_reply)) as url:
        gated = truecost("review", "--target", f"openai:{url}#m", "--out", str(tmp_path / "v2"), *common,
                         "--baseline", baseline, "--fail-on", "security", "--json")
        ungated = truecost("review", "--target", f"openai:{url}#m", "--out", str(tmp_path / "v3"), *common,
                           "--baseline", baseline, "--fail-on", "bias", "--json")
    assert gated.returncode == 1, gated.stderr[-2000:]
    report = json.loads(gated.stdout)
    assert any(r["metric"] == "security.pii_leakage.attack_success_rate" and r["regression"]
               for r in report["regressions"])
    assert report["failed_on"] and report["exit_code"] == 1
    assert ungated.returncode == 0


def test_bad_eval_file_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "2+2?", "expected": "4", "scorer": "numeric"}\n{"expected": "4"}\n')
    proc = truecost("review", "--target", "hf:/nonexistent", "--suites", "performance", "--data", str(bad))
    assert proc.returncode == 2
    assert f"{bad}:2: field 'prompt': Field required" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = truecost("review", "--target", "nonsense", "--suites", "performance")
    assert proc.returncode == 2 and "hf:PATH" in proc.stderr


def test_api_model_is_priced_per_token_by_estimate(tmp_path: Path) -> None:
    from truecost.estimate import token_price_usd

    with serve(scripted_app(safe_reply)) as url:
        result = run_review(f"openai:{url}#gpt-4o-mini", ["performance"], limit=4,
                            ledger=Ledger(f"sqlite:///{tmp_path / 'l.db'}"))
    requests = result.cost["requests"]
    expected_usd = token_price_usd("gpt-4o-mini", result.cost["prompt_tokens"], result.cost["completion_tokens"])
    assert result.cost["api_usd"] == pytest.approx(expected_usd)  # prices are linear in tokens
    assert result.metric("performance.cost_per_1k_requests_usd").value == pytest.approx(
        1000 * result.cost["api_usd"] / requests)
    assert result.cost["review_cost_usd"] >= result.cost["api_usd"]


def test_project_file_review_section_sets_defaults_and_rejects_typos(tmp_path: Path) -> None:
    from truecost.config import load_config
    from truecost.errors import UserError

    good = tmp_path / "good.toml"
    good.write_text('[review]\nsuites = ["performance"]\nlimit = 2\nmax_new_tokens = 4\n')
    with serve(scripted_app(safe_reply)) as url:
        result = run_review(f"openai:{url}#m", config=load_config(good), ledger=Ledger(f"sqlite:///{tmp_path}/l.db"))
    assert result.suites == ["performance"] and result.cost["requests"] == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[review]\nmax_request = 5\n")
    with pytest.raises(UserError, match=r"\[review\]: max_request: Extra inputs are not permitted"):
        run_review("openai:http://127.0.0.1:9/v1#m", config=load_config(bad))
