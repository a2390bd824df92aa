"""Output folders that appear whole or not at all.

A command that writes a folder either builds it in a temporary sibling and renames it into place on success
(`atomic_output_dir`), or, when it must resume into the folder (sharded, restartable work), clears the completion
marker first and writes it last (`clear_complete` / `mark_complete`). Readers call `require_complete` before
trusting a folder that a truecost command wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from truecost.errors import UserError

COMPLETE_MARKER = "_COMPLETE"


def is_complete(folder: str | Path) -> bool:
    """True when `folder` holds the marker a finished run writes last."""
    return (Path(folder) / COMPLETE_MARKER).is_file()


def mark_complete(folder: str | Path, **info: Any) -> Path:
    """Write the completion marker (atomically) with when and what produced the folder; call it last."""
    marker = Path(folder) / COMPLETE_MARKER
    payload = {"completed_at": datetime.now(UTC).isoformat(), **info}
    tmp = marker.with_name(f".{COMPLETE_MARKER}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, marker)
    return marker


def clear_complete(folder: str | Path) -> None:
    """Remove the marker before writing into a folder, so a kill mid-write never leaves it looking finished."""
    (Path(folder) / COMPLETE_MARKER).unlink(missing_ok=True)


def require_complete(folder: str | Path, what: str = "output folder") -> None:
    """UserError unless `folder` was finished by the run that wrote it."""
    path = Path(folder)
    if not is_complete(path):
        raise UserError(f"{what} {path} is incomplete (no {COMPLETE_MARKER} marker): the run that wrote it did "
                        "not finish; run it again")


@contextmanager
def atomic_output_dir(final: str | Path, **info: Any) -> Iterator[Path]:
    """Yield a temporary sibling of `final` to write into; on success mark it complete and swap it into place
    (an earlier folder at `final` is replaced only then). On an exception the temporary folder is removed and
    `final` is left as it was."""
    final = Path(final)
    if final.exists() and not final.is_dir():
        raise UserError(f"output {final} exists and is not a folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = final.with_name(f".{final.name}.tmp-{tag}")
    tmp.mkdir()
    try:
        yield tmp
        mark_complete(tmp, **info)
        old = final.with_name(f".{final.name}.old-{tag}")
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
