"""The ledger is reached only through its API: no code outside `truecost.ledger` touches its tables, its
engine or its private helpers (an AST check over the source tree)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "truecost"
INTERNAL_MODULES = {"truecost.ledger.schema", "truecost.ledger.migrations"}
INTERNAL_ATTRIBUTES = {"engine", "_session", "_sessions"}


def _violations(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module in INTERNAL_MODULES:
                found.append(f"imports {node.module}")
            elif node.module.startswith("truecost.ledger"):
                found += [f"imports private {a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Import):
            found += [f"imports {a.name}" for a in node.names if a.name in INTERNAL_MODULES]
        elif (isinstance(node, ast.Attribute) and node.attr in INTERNAL_ATTRIBUTES
              and isinstance(node.value, ast.Name) and "ledger" in node.value.id.lower()):
            found.append(f"uses {node.value.id}.{node.attr}")
    return found


def test_no_code_outside_the_ledger_touches_its_tables() -> None:
    offenders = {}
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        if not relative.startswith("ledger/") and (found := _violations(path)):
            offenders[relative] = found
    assert offenders == {}


def test_the_check_catches_table_access(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from truecost.ledger.schema import RunRow\nfrom truecost.ledger.store import _safe\n"
                      "def f(ledger):\n    return ledger.engine\n")
    assert _violations(sample) == ["imports truecost.ledger.schema", "imports private _safe", "uses ledger.engine"]
