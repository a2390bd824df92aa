"""Write ledger runs as CSV or JSON Lines."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import TextIO

from truecost.ledger.records import RunRecord

CSV_COLUMNS = ("id", "kind", "name", "status", "started_at", "ended_at", "hardware", "wall_seconds", "cpu_seconds",
               "gpu_hours", "energy_kwh", "cost_usd", "tokens", "parent_id", "params", "results", "host", "pid",
               "heartbeat_at", "heartbeat_seconds")  # new columns go last, so older readers keep their positions


def write_runs(runs: Iterable[RunRecord], out: TextIO, fmt: str) -> int:
    """Write runs to `out` as `csv` (params/results as JSON cells) or `jsonl`; returns how many were written."""
    count = 0
    if fmt == "jsonl":
        for run in runs:
            out.write(json.dumps(run.to_dict(), sort_keys=True) + "\n")
            count += 1
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for run in runs:
            row = run.to_dict()
            row["params"] = json.dumps(row["params"], sort_keys=True)
            row["results"] = json.dumps(row["results"], sort_keys=True)
            writer.writerow(row)
            count += 1
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    return count
