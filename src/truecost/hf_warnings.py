"""Warnings from the Hugging Face stack that a truecost user can do nothing about, silenced in one place.

transformers 5 renamed gradient checkpointing (and other arguments) and warns that the old names "will be removed
in v6"; peft and the Trainer still use the old names internally, so every LoRA or Trainer run printed them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

RENAMED_IN_V6 = ".*will be removed in v6"


def ignore_renames() -> None:
    """Silence transformers' v6 rename warnings in the current warnings context (the CLI: for the whole process)."""
    warnings.filterwarnings("ignore", message=RENAMED_IN_V6, category=FutureWarning)


@contextmanager
def quiet_renames() -> Iterator[None]:
    """Silence them only inside the block (library code leaves the caller's warning filters as they were)."""
    with warnings.catch_warnings():
        ignore_renames()
        yield
