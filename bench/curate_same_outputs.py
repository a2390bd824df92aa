"""Do two versions of `truecost curate` write the same outputs? A check for changes meant only to make it faster.

Runs `truecost curate` on each corpus with each step list and records a SHA-256 of every output that says what
was kept and why (`kept/*`, `removed.jsonl`, `duplicates.jsonl`, `bad_input.jsonl`, `manifest.json`).
`--save FILE` writes the digests; `--compare FILE` recomputes them with the code on PYTHONPATH and exits 1 on any
difference, naming the file. Run it once with the old source first on PYTHONPATH and once with the new:

    PYTHONPATH=/path/to/old/src .venv/bin/python bench/curate_same_outputs.py corpus.jsonl --save before.json
    PYTHONPATH=src .venv/bin/python bench/curate_same_outputs.py corpus.jsonl --compare before.json

Default corpora: the shared labelled dedup sample. Default step lists: `near`, `exact,near` and all steps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLE = ROOT.parent / "shared" / "data" / "dedup_sample" / "corpus.jsonl"
STEP_LISTS = ["near", "exact,near", "normalize,pii,language,quality,exact,near"]
OUTPUTS = ("removed.jsonl", "duplicates.jsonl", "bad_input.jsonl", "manifest.json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digests(corpus: Path, steps: str) -> dict[str, str]:
    """SHA-256 of each output of one run (kept shards by their name under kept/)."""
    with tempfile.TemporaryDirectory(prefix="curate-same-") as tmp:
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "truecost", "curate", str(corpus), "--output", str(out), "--steps", steps,
               "--json", "-q"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"curate failed on {corpus} ({steps}):\n{done.stderr[-2000:]}")
        found = {name: _sha256(out / name) for name in OUTPUTS if (out / name).exists()}
        for shard in sorted((out / "kept").rglob("*")):
            if shard.is_file():
                found[f"kept/{shard.relative_to(out / 'kept')}"] = _sha256(shard)
        return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="*", type=Path, help="JSONL corpora (default: the shared dedup sample)")
    parser.add_argument("--steps", action="append", help="a step list (repeatable; default: near, exact,near, all)")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--save", type=Path, help="write the digests to this file")
    action.add_argument("--compare", type=Path, help="compare with digests saved earlier; exit 1 on a difference")
    args = parser.parse_args()
    corpora = args.corpora or [SHARED_SAMPLE]
    found = {f"{corpus.parent.name}/{corpus.name} --steps {steps}": digests(corpus, steps)
             for corpus in corpora for steps in (args.steps or STEP_LISTS)}
    if args.save:
        args.save.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
        print(f"saved {sum(len(v) for v in found.values())} digests of {len(found)} runs to {args.save}")
        return 0
    saved = json.loads(args.compare.read_text())
    differ = [f"{run}: {name}" for run, files in saved.items() if run in found
              for name in sorted(set(files) | set(found[run])) if files.get(name) != found[run].get(name)]
    missing = [run for run in found if run not in saved]
    for line in differ:
        print(f"DIFFERENT  {line}")
    for run in missing:
        print(f"not in {args.compare}: {run}")
    print(f"{len(found) - len(missing)} runs compared, {len(differ)} outputs differ")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
