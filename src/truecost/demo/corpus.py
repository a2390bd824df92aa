"""Real text that every Python installation carries: the standard library's own docstrings.

Read with `ast` from the source files (nothing is imported, so no side effects), so the demo needs no network and
no files beyond Python itself.
"""

from __future__ import annotations

import ast
import inspect
import random
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Packages whose docstrings are mostly test scaffolding or generated tables rather than prose.
_SKIP_PARTS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "__pycache__", "turtledemo",
               "ensurepip", "pydoc_data", "encodings"}


@dataclass(frozen=True)
class TextDoc:
    """One document of the demo corpus; `domain` is the top-level stdlib package it came from."""

    id: str
    text: str
    domain: str


def _docstrings(path: Path, module: str) -> Iterator[tuple[str, str]]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return
    nodes: list[tuple[str, ast.AST]] = [(module, tree)]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            nodes.append((f"{module}.{node.name}", node))
    for name, node in nodes:
        doc = ast.get_docstring(node, clean=False)  # type: ignore[arg-type]
        if doc:
            yield name, reflow(inspect.cleandoc(doc))


def reflow(text: str) -> str:
    """Join hard-wrapped lines into one line per paragraph, as prose appears on the web.

    Docstrings wrap at ~72 columns; left as is, every line-level rule (C4's terminal punctuation, say) would see
    a fragment instead of a sentence. Indented blocks (code, tables) keep their lines.
    """
    paragraphs = []
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if any(line.startswith((" ", "\t", ">>>")) for line in lines):
            paragraphs.append(block)
        else:
            paragraphs.append(" ".join(line.strip() for line in lines if line.strip()))
    return "\n\n".join(p for p in paragraphs if p)


def stdlib_documents(min_words: int = 40, stdlib_dir: str | Path | None = None) -> list[TextDoc]:
    """Every docstring of at least `min_words` words in the standard library, in a stable order."""
    root = Path(stdlib_dir or sysconfig.get_paths()["stdlib"])
    docs: list[TextDoc] = []
    seen: set[str] = set()
    ids: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if _SKIP_PARTS.intersection(rel.parts):
            continue
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        for name, text in _docstrings(path, module):
            if len(text.split()) < min_words or text in seen:
                continue
            seen.add(text)
            doc_id, n = f"stdlib:{name}", 1
            while doc_id in ids:  # same name twice in a module (methods of different classes)
                n += 1
                doc_id = f"stdlib:{name}~{n}"
            ids.add(doc_id)
            docs.append(TextDoc(id=doc_id, text=text, domain=module.split(".")[0]))
    return docs


def split_by_domain(docs: list[TextDoc], shifted_domains: set[str]) -> tuple[list[TextDoc], list[TextDoc]]:
    """(docs outside `shifted_domains`, docs inside): the second set is unseen in training, for drift."""
    inside = [d for d in docs if d.domain in shifted_domains]
    return [d for d in docs if d.domain not in shifted_domains], inside


def train_heldout_split(docs: list[TextDoc], heldout_fraction: float, seed: int) -> tuple[list[TextDoc], list[TextDoc]]:
    """A seeded random split into (train, held-out)."""
    order = list(docs)
    random.Random(seed).shuffle(order)
    cut = int(len(order) * (1 - heldout_fraction))
    return order[:cut], order[cut:]
