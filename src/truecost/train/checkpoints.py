"""Checkpoints are data, not code: found, verified and pruned here.

The Trainer writes a checkpoint folder (`checkpoint-<step>`: weights in safetensors; optimizer, scheduler and RNG
state as tensors that `torch.load(weights_only=True)` reads; `trainer_state.json`). truecost adds
`truecost.json` (spend so far, the ledger ids of every session, its callbacks' state) and then, last, the
completion marker with a SHA-256 of every file, written by temp file + rename. A folder without the marker is a
write that was cut short and is never resumed from; an older complete checkpoint is deleted only after a newer
one is complete.

On resume every file is checked before anything is loaded: its checksum, and that each pickle-based file opens
with `weights_only=True` (which refuses any object that could run code). A failure is one line naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from truecost.errors import UserError
from truecost.outputs import COMPLETE_MARKER, is_complete, mark_complete

STATE_FILE = "truecost.json"
_STEP = re.compile(r"^checkpoint-(\d+)$")
_PICKLED = (".pt", ".pth", ".bin")
# Written by the Trainer for humans, never read on resume: a pickled TrainingArguments object, which
# `weights_only=True` rightly refuses. Nothing in truecost or the Trainer loads it when resuming.
_NEVER_LOADED = {"training_args.bin"}


def step_of(folder: Path) -> int | None:
    """The optimizer step of a `checkpoint-<step>` folder, or None for any other name."""
    match = _STEP.match(folder.name)
    return int(match.group(1)) if match else None


def checkpoints(output_dir: Path) -> list[Path]:
    """Checkpoint folders under `output_dir`, oldest step first (complete or not)."""
    if not output_dir.is_dir():
        return []
    found = [p for p in output_dir.iterdir() if p.is_dir() and step_of(p) is not None]
    return sorted(found, key=lambda p: step_of(p) or 0)


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != COMPLETE_MARKER
                  and not p.name.startswith(f".{COMPLETE_MARKER}"))


def write_state(folder: Path, state: dict[str, Any]) -> Path:
    """Write `truecost.json` into a checkpoint folder atomically."""
    path = folder / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_state(folder: Path) -> dict[str, Any]:
    """truecost's state saved with a checkpoint (empty for a checkpoint written without truecost)."""
    path = folder / STATE_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"checkpoint file {path} is not valid JSON ({exc}): the checkpoint is damaged") from exc
    if not isinstance(data, dict):
        raise UserError(f"checkpoint file {path} does not hold a JSON object: the checkpoint is damaged")
    return data


def seal(folder: Path, **info: Any) -> Path:
    """Mark a fully written checkpoint complete, with the checksum of every file in it (call it last)."""
    sums = {str(p.relative_to(folder)): _sha256(p) for p in _files(folder)}
    return mark_complete(folder, files=sums, **info)


def _check_file(path: Path) -> None:
    """Open one file the way resuming will, but refusing code: weights_only for pickles, JSON for JSON."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                list(handle.keys())
        elif path.suffix in _PICKLED and path.name not in _NEVER_LOADED:
            import torch
            from transformers.trainer_pt_utils import safe_globals

            with safe_globals():  # the numpy array types of the RNG state, allowlisted as the Trainer does
                torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - every way a damaged or hostile file fails becomes one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"checkpoint file {path} cannot be loaded safely ({reason[:200]}): the checkpoint is "
                        "damaged or was not written by a training run; resume from another checkpoint or start "
                        "again") from exc


def verify(folder: Path) -> None:
    """UserError (one line, naming the file) unless `folder` is a complete, unaltered, data-only checkpoint."""
    marker = folder / COMPLETE_MARKER
    if not is_complete(folder):
        raise UserError(f"checkpoint {folder} is incomplete (no {COMPLETE_MARKER} marker): its write was cut short")
    try:
        sums = json.loads(marker.read_text(encoding="utf-8"))["files"]
        assert isinstance(sums, dict)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AssertionError) as exc:
        raise UserError(f"checkpoint file {marker} is damaged (no file checksums)") from exc
    for name, digest in sorted(sums.items()):
        path = folder / name
        if not path.is_file():
            raise UserError(f"checkpoint file {path} is missing")
        if _sha256(path) != digest:
            raise UserError(f"checkpoint file {path} does not match the checksum written with it: it was changed "
                            "or damaged after the checkpoint was saved")
    for path in _files(folder):
        _check_file(path)


def resume_point(output_dir: str | Path) -> Path:
    """The newest complete checkpoint under `output_dir`, verified; incomplete newer folders (a write cut short
    by a kill) are removed so that the Trainer never picks them up. UserError when there is none or it is bad.

        trainer.train(resume_from_checkpoint=str(resume_point(args.output_dir)))
    """
    output_dir = Path(output_dir)
    found = checkpoints(output_dir)
    complete = [p for p in found if is_complete(p)]
    if not complete:
        what = f"only incomplete ones ({', '.join(p.name for p in found)})" if found else "none"
        raise UserError(f"--resume: no complete checkpoint in {output_dir} ({what}); run without --resume first")
    newest = complete[-1]
    for leftover in found:
        if not is_complete(leftover) and (step_of(leftover) or 0) >= (step_of(newest) or 0):
            shutil.rmtree(leftover, ignore_errors=True)
    verify(newest)
    return newest


def prune(output_dir: Path, keep: int) -> list[Path]:
    """Delete complete checkpoints beyond the newest `keep`, and incomplete ones older than the newest complete
    one; returns what was deleted."""
    found = checkpoints(output_dir)
    complete = [p for p in found if is_complete(p)]
    if not complete:
        return []
    newest_step = step_of(complete[-1]) or 0
    doomed = complete[:-keep] + [p for p in found if not is_complete(p) and (step_of(p) or 0) < newest_step]
    for folder in doomed:
        shutil.rmtree(folder, ignore_errors=True)
    return doomed
