"""A report as plain data (sections of text, tables and charts) and its rendering to one self-contained HTML file.

Every part's report (curate, monitor, review, the TCO, the ledger, the demo) is a `Report` rendered here, so they
share one look, one template and one browser test. Every table row can carry a `basis`: `measured: ...` (a ledger
run recorded it), `sourced: ...` (a published figure with its citation) or `assumed: ...` (a named default the user
can override); the page tags each row with it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from truecost import __version__

BASES = ("measured", "sourced", "assumed")


def basis(kind: str, detail: str = "") -> str:
    """A row's basis string, e.g. `basis("measured", "run 1a2b3c4d")`; `kind` is measured, sourced or assumed."""
    if kind not in BASES:
        raise ValueError(f"basis must be one of {', '.join(BASES)}, got {kind!r}")
    return f"{kind}: {detail}" if detail else kind


@dataclass
class Table:
    """A table; `basis` (optional, one per row) says how each row's figures were obtained (see `basis()`)."""

    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""
    basis: list[str] | None = None


@dataclass
class Section:
    """A heading with paragraphs, tables and SVG charts, then preformatted blocks and small notes, in that order."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)
    preformatted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    """A whole report: rendered to HTML for people and kept as data for `report.json`."""

    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready structure (charts omitted: they are markup, not data)."""
        data = asdict(self)
        for section in data["sections"]:
            section["charts"] = len(section["charts"])
        return data


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def render_html(report: Report) -> str:
    """One HTML file with inline CSS and SVG and no scripts: opens offline, prints, and passes the browser check
    (`tests/browser.py`)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("truecost.report", "templates"), autoescape=select_autoescape())
    env.filters["cell"] = _cell
    return env.get_template("report.html").render(report=report, version=__version__, bases=BASES)


def write_report(report: Report, out_dir: str | Path, extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write `report.html` and `report.json` (the report's data plus `extra`) into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out / "report.html", out / "report.json"
    html_path.write_text(render_html(report), encoding="utf-8")
    data = {"report": report.to_dict(), **(extra or {})}
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return html_path, json_path
