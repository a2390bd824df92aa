"""Pools from the shared MMLU stream sample (real prompts, real per-item correctness of Mixtral-8x7B)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from truecost.monitor.streams import read_mmlu_pool


@pytest.fixture(scope="session")
def pools(shared_data: Path) -> dict[str, pd.DataFrame]:
    """`base` (nutrition + philosophy, accuracy ~0.79), `accounting` (0.54) and `virology` (0.51)."""
    folder = shared_data / "monitor_sample" / "mmlu_stream"
    return {"base": read_mmlu_pool([str(folder / "nutrition.csv"), str(folder / "philosophy.csv")]),
            "accounting": read_mmlu_pool([str(folder / "professional_accounting.csv")]),
            "virology": read_mmlu_pool([str(folder / "virology.csv")])}
