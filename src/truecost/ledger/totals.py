"""Spend that counts every CPU-second and dollar once: totals over runs, and runs as trees of parents and children.

Each run records its own share (a parent's meter leaves out what the runs nested in it measured; see `meter`),
so the total of any set of runs is the plain sum of their figures, and a tree's total is its root's own share
plus its children's totals.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from truecost.ledger.records import RunRecord

MEASURES = ("wall_seconds", "cpu_seconds", "gpu_hours", "energy_kwh", "cost_usd", "tokens")


@dataclass(frozen=True)
class Spend:
    """What some runs used and cost, added up."""

    runs: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    gpu_hours: float = 0.0
    energy_kwh: float = 0.0
    cost_usd: float = 0.0
    tokens: int = 0

    @classmethod
    def of(cls, run: RunRecord) -> Spend:
        """One run's own share."""
        return cls(1, float(run.wall_seconds), float(run.cpu_seconds), float(run.gpu_hours), float(run.energy_kwh),
                   float(run.cost_usd), int(run.tokens))

    def __add__(self, other: Spend) -> Spend:
        return Spend(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def total_spend(runs: Iterable[RunRecord]) -> Spend:
    """The spend of `runs`, each CPU-second and dollar once (nested runs included or not, no double count)."""
    return sum((Spend.of(run) for run in runs), Spend())


@dataclass
class RunTree:
    """A run and the runs opened under it."""

    run: RunRecord
    children: list[RunTree] = field(default_factory=list)

    @property
    def own(self) -> Spend:
        """This run's own share, without its children."""
        return Spend.of(self.run)

    @property
    def total(self) -> Spend:
        """This run with all its descendants."""
        return sum((child.total for child in self.children), self.own)

    def walk(self, depth: int = 0) -> Iterator[tuple[int, RunTree]]:
        """(depth, node) for this node and every descendant, parents before children."""
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict: the run, its own share, its total and its children."""
        return {"run": self.run.to_dict(), "own": self.own.to_dict(), "total": self.total.to_dict(),
                "children": [child.to_dict() for child in self.children]}


def build_forest(runs: Iterable[RunRecord]) -> list[RunTree]:
    """`runs` as trees: roots (runs whose parent is not among them) in the given order, children oldest first."""
    nodes = {run.id: RunTree(run) for run in runs}
    roots = []
    for node in nodes.values():
        parent = nodes.get(node.run.parent_id) if node.run.parent_id else None
        if parent is None or parent is node:
            roots.append(node)
        else:
            parent.children.append(node)
    for node in nodes.values():
        node.children.sort(key=lambda child: (child.run.started_at, child.run.id))
    return roots
