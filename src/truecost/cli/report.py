"""`truecost report`: an HTML report of everything the ledger holds, with charts."""

from __future__ import annotations

from pathlib import Path

import typer

from truecost.cli._common import JSON_OPTION, console, open_ledger, print_json
from truecost.errors import UserError


def register(app: typer.Typer) -> None:
    """Add the `report` command to the root app."""

    @app.command("report")
    def report(
        out: Path = typer.Option(Path("truecost-report"), "--out", "-o",
                                 help="Folder for report.html and report.json."),
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Write report.html (with charts) and report.json from the runs and requests in the ledger."""
        from truecost.report import write_report
        from truecost.report.ledger_report import ledger_report

        built, summary = ledger_report(open_ledger())
        try:
            html_path, json_path = write_report(built, out, extra={"summary": summary})
        except OSError as exc:
            raise UserError(f"cannot write the report to {out}: {exc.strerror}") from exc
        if as_json:
            print_json({"report_html": str(html_path.resolve()), "report_json": str(json_path.resolve()),
                        "summary": summary})
            return
        console.print(f"{summary['runs']} run(s), {summary['requests']} request(s), "
                      f"${summary['total_cost_usd']:,.4f} in all", highlight=False)
        console.print(f"report: {html_path.resolve()}", highlight=False)
