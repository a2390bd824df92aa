"""`run_curate` meters itself when given a ledger (a Python user gets the same record as the CLI), and records
nothing without one; the record carries the keys the TCO reads."""

from __future__ import annotations

import json
from pathlib import Path

from tests.curate.test_engines import corpus
from truecost.config import Config
from truecost.curate.pipeline import run_curate
from truecost.curate.settings import CurateSettings
from truecost.estimate.tco_ledger import read_measurements
from truecost.ledger import Ledger

RESULT_KEYS = {"docs_in", "docs_out", "tokens_removed", "tokens_removed_fraction", "usd_saved_per_training_run",
               "bad_input", "output"}


def test_a_ledger_given_to_run_curate_records_the_run(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    with ledger.run("demo", "caller") as parent:
        run = run_curate([], CurateSettings(steps=["normalize", "quality", "exact"]), docs=corpus(30),
                         output_dir=tmp_path / "out", ledger=ledger, parent_id=parent.id)
    assert run.ledger_run_id is not None
    record = ledger.get_run(run.ledger_run_id)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (record.kind, record.status, record.parent_id) == ("curate", "completed", parent.id)
    assert set(record.results) == RESULT_KEYS
    assert record.tokens == report["totals"]["tokens_in"] > 0
    assert record.results["docs_out"] == report["totals"]["docs_out"] < record.results["docs_in"] == 34
    assert record.results["tokens_removed"] == report["savings"]["tokens_removed"] > 0
    assert record.cpu_seconds > 0
    # The TCO reads the duplicate share from this very run.
    measurements, _ = read_measurements(ledger, config=Config())
    shares = [m for m in measurements if m.input == "duplicate_share" and m.arm == "poor"]
    assert shares and shares[0].run_ids == (run.ledger_run_id,)
    assert shares[0].value == record.results["tokens_removed_fraction"]


def test_without_a_ledger_run_curate_records_nothing(tmp_path: Path) -> None:
    run = run_curate([], CurateSettings(steps=["exact"]), docs=corpus(10), output_dir=tmp_path / "out")
    assert run.ledger_run_id is None
    assert not (tmp_path / ".truecost").exists()  # the working directory's default ledger was never opened
