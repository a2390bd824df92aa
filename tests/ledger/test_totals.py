"""Money counted once: nested runs doing real CPU work add up to what the process really used, in the ledger's
totals, its run trees and the spend report (the process's own CPU clock is the independent reference)."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from truecost.estimate.pricing import ComputePrices, compute_cost_usd
from truecost.ledger import Ledger, Spend, build_forest, total_spend
from truecost.report.ledger_report import ledger_report

PRICES = ComputePrices(cpu_usd_per_core_hour=36.0)  # one cent per CPU-second: dollars are easy to check


def _process_cpu() -> float:
    """The independent meter: this process's CPU clock (plus waited-for children, as the ledger's meter reads)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _burn(seconds: float) -> float:
    """Burn about `seconds` of CPU; returns what it burned by the process clock."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        sum(i * i for i in range(1000))
    return time.process_time() - start


def test_nested_runs_count_each_cpu_second_once(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    burned: dict[str, float] = {}
    before = _process_cpu()
    with ledger.run("demo", "parent", prices=PRICES) as parent:
        inside = _process_cpu()
        burned["parent"] = _burn(0.2)
        with ledger.run("curate", "child", parent_id=parent.id, prices=PRICES) as child:
            burned["child"] = _burn(0.3)
        with ledger.run("train", "second child", prices=PRICES) as second:  # no parent_id: the enclosing run
            burned["second"] = _burn(0.1)
            with ledger.run("review", "grandchild", prices=PRICES) as grandchild:
                burned["grandchild"] = _burn(0.2)
        burned["parent"] += _burn(0.1)
        inside = _process_cpu() - inside
    independent = _process_cpu() - before  # also the writes that open and close the parent, outside its meter

    runs = {run.id: run for run in ledger.list_runs()}
    assert runs[second.id].parent_id == parent.id and runs[grandchild.id].parent_id == second.id
    # Each run holds its own work (plus some ledger overhead), not its children's (0.6 CPU-s more, before the fix).
    for meter, name in ((parent, "parent"), (child, "child"), (second, "second"), (grandchild, "grandchild")):
        assert burned[name] <= runs[meter.id].cpu_seconds <= burned[name] + 0.3, name
    # The total lies between the process's CPU inside the parent's block and around it: each CPU-second once.
    total = total_spend(runs.values())
    assert inside - 0.01 <= total.cpu_seconds <= independent + 0.01
    assert total.cost_usd == pytest.approx(compute_cost_usd(total.cpu_seconds, 0.0, PRICES))

    tree = ledger.tree(parent.id)
    assert [node.run.id for _, node in tree.walk()] == [parent.id, child.id, second.id, grandchild.id]
    assert tree.total.to_dict() == pytest.approx(total.to_dict())  # the same runs, summed in another order
    assert ledger.tree(second.id).total.cpu_seconds == pytest.approx(
        runs[second.id].cpu_seconds + runs[grandchild.id].cpu_seconds)
    assert [r.id for r in ledger.children(parent.id)] == [child.id, second.id]
    assert [r.id for r in ledger.list_runs(parent_id=second.id)] == [grandchild.id]

    _, summary = ledger_report(ledger)
    assert summary["total_cost_usd"] == pytest.approx(total.cost_usd)
    assert summary["total"]["cpu_seconds"] == pytest.approx(total.cpu_seconds)
    assert sum(kind["cpu_seconds"] for kind in summary["by_kind"].values()) == pytest.approx(total.cpu_seconds)


def test_heartbeat_of_a_parent_leaves_out_its_running_child(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    with ledger.run("demo", "parent", heartbeat_seconds=0) as parent, \
            ledger.run("train", "child", heartbeat_seconds=0) as child:
        burned = _burn(0.4)
        parent.flush()  # a checkpoint of the parent while its child works
        child.flush()
        mid_parent = ledger.get_run(parent.id).cpu_seconds
        mid_child = ledger.get_run(child.id).cpu_seconds
    assert mid_child >= burned and mid_parent < 0.1  # a kill now would not count the child's work twice


def test_forest_and_spend_arithmetic() -> None:
    ledger = Ledger("sqlite://")
    a = ledger.start_run("demo", "a")
    b = ledger.start_run("curate", "b", parent_id=a.id)
    c = ledger.start_run("train", "c", parent_id="gone")  # parent not among the runs: a root
    for run, cost in ((a, 1.0), (b, 2.0), (c, 4.0)):
        run.cost_usd, run.tokens = cost, 10
    roots = build_forest([a, b, c])
    assert [root.run.id for root in roots] == [a.id, c.id]
    assert roots[0].total == Spend(runs=2, cost_usd=3.0, tokens=20)
    assert total_spend([a, b, c]) == Spend(runs=3, cost_usd=7.0, tokens=30)


def test_a_run_in_another_ledger_is_not_taken_from_the_enclosing_one(tmp_path: Path) -> None:
    mine, theirs = Ledger(f"sqlite:///{tmp_path / 'a.db'}"), Ledger(f"sqlite:///{tmp_path / 'b.db'}")
    with mine.run("demo", "outer", heartbeat_seconds=0) as outer, \
            theirs.run("train", "elsewhere", heartbeat_seconds=0) as inner:
        burned = _burn(0.2)
    # Each ledger's own sum stays whole: the outer run keeps the CPU that only the other ledger also holds.
    assert mine.get_run(outer.id).cpu_seconds >= burned and theirs.get_run(inner.id).parent_id is None
