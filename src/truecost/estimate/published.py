"""Published figures about real corpora and models, each with the sentence it rests on, its source and date.

The TCO takes its *sourced* inputs from here (data/published_figures.csv); the demo takes the defect rates it
injects into its poorly prepared copy from here too. A row is added only when the quoted sentence was read in the
source itself: a figure we could not check is left out rather than guessed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from truecost.errors import UserError


@dataclass(frozen=True)
class PublishedFigure:
    """One published number: what it measures, the quoted sentence, the citation and its date."""

    name: str
    value: float
    unit: str
    what: str
    quote: str
    source: str
    source_date: str

    def citation(self) -> str:
        """One line for a report: the source, its date and the quoted sentence."""
        return f"{self.source} ({self.source_date}): {self.quote}"


@lru_cache(maxsize=1)
def published_figures() -> dict[str, PublishedFigure]:
    """Every row of data/published_figures.csv, by name."""
    text = resources.files("truecost.estimate").joinpath("data", "published_figures.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    return {r["name"]: PublishedFigure(name=r["name"], value=float(r["value"]), unit=r["unit"], what=r["what"],
                                       quote=r["quote"], source=r["source"], source_date=r["source_date"])
            for r in rows}


def published_figure(name: str) -> PublishedFigure:
    """One figure by name; UserError naming the known ones when there is no such row."""
    figures = published_figures()
    if name not in figures:
        raise UserError(f"no published figure {name!r}; known: {', '.join(sorted(figures))}")
    return figures[name]
