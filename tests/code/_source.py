"""Shared plumbing of the code-rule checks: walk `src/truecost` and name each place by file and function."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "truecost"
# Folders other helpers are rewriting while issue 18 lands: their findings are allow-listed, never ignored.
BUSY = ("train/", "review/", "demo/", "synth/", "cli/train.py", "cli/review.py", "cli/demo.py", "cli/synth.py")


@functools.cache
def modules() -> tuple[tuple[str, ast.Module], ...]:
    """(path relative to src/truecost, parsed module) for every Python file of the package, parsed once."""
    return tuple((path.relative_to(SRC).as_posix(), ast.parse(path.read_text(encoding="utf-8")))
                 for path in sorted(SRC.rglob("*.py")))


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name such as `Class.method` or `outer.inner`, node) for every function in `tree`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, node
            yield from functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def is_busy(relative: str) -> bool:
    return relative.startswith(BUSY)
