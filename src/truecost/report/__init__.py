"""report: self-contained HTML (inline SVG charts) and JSON reports of measured and extrapolated costs."""

from truecost.report.document import Report, Section, Table, render_html, write_report

__all__ = ["Report", "Section", "Table", "render_html", "write_report"]
