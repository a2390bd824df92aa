"""`truecost report`: an HTML report of everything the ledger holds, with charts, and the TCO it measures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from truecost.cli._common import JSON_OPTION, console, load_config, open_ledger, print_json
from truecost.errors import UserError

if TYPE_CHECKING:
    from truecost.ledger import Ledger
    from truecost.report import Report


def _tco(ledger: Ledger, built: Report, summary: dict[str, Any]) -> dict[str, Any] | None:
    """Append the TCO from the ledger's measurements to the report; its `to_dict()`, or None without runs."""
    from truecost.estimate.tco import tco_from_ledger
    from truecost.report import Section
    from truecost.report.ledger_report import note_estimates
    from truecost.report.tco_report import tco_sections

    try:
        result = tco_from_ledger(ledger, config=load_config())
    except UserError as exc:
        built.sections.append(Section("Cost of ownership", paragraphs=[f"Not built: {exc}"]))
        return None
    built.sections.extend(tco_sections(result))
    note_estimates(built, summary, ledger.display_url)
    return result.to_dict()


def register(app: typer.Typer) -> None:
    """Add the `report` command to the root app."""

    @app.command("report")
    def report(
        out: Path = typer.Option(Path("truecost-report"), "--out", "-o",
                                 help="Folder for report.html and report.json."),
        tco: bool = typer.Option(True, "--tco/--no-tco", help="Add the cost of ownership with every input the "
                                 "ledger measured (see `truecost estimate tco --from-ledger`)."),
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Write report.html (with charts) and report.json from the runs and requests in the ledger."""
        from truecost.report import write_report
        from truecost.report.ledger_report import ledger_report

        ledger = open_ledger()
        built, summary = ledger_report(ledger)
        extra: dict[str, Any] = {"summary": summary}
        if tco and summary["runs"]:
            extra["tco"] = _tco(ledger, built, summary)
        try:
            html_path, json_path = write_report(built, out, extra=extra)
        except OSError as exc:
            raise UserError(f"cannot write the report to {out}: {exc.strerror}") from exc
        if as_json:
            print_json({"report_html": str(html_path.resolve()), "report_json": str(json_path.resolve()),
                        "summary": summary, **({"tco": extra["tco"]} if "tco" in extra else {})})
            return
        console.print(f"{summary['runs']} run(s), {summary['requests']} request(s), "
                      f"${summary['total_cost_usd']:,.4f} in all", highlight=False, markup=False)
        console.print(f"report: {html_path.resolve()}", highlight=False, markup=False)
