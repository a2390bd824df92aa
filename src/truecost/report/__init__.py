"""report: one renderer for every part's report: self-contained HTML (inline SVG charts, no scripts) and JSON, with
every figure tagged measured, sourced or assumed."""

from truecost.report.document import BASES, Report, Section, Table, basis, render_html, write_report

__all__ = ["BASES", "Report", "Section", "Table", "basis", "render_html", "write_report"]
