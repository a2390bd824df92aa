"""Streams with a known drift point, built from labelled pools, to test and benchmark monitors.

A stream is a reference window and a current stream whose first `n_before` rows come from the same pool as the
reference and the rest from a mix: `share` of each row drawn from the drifted pool, the others from the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from truecost.errors import UserError

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Stream:
    """A reference, a current stream, and the row where drift starts (None: no drift)."""

    reference: pd.DataFrame
    current: pd.DataFrame
    drift_row: int | None


def drift_stream(base: pd.DataFrame, drifted: pd.DataFrame | None, *, n_reference: int, n_before: int,
                 n_after: int, share: float = 1.0, seed: int = 0) -> Stream:
    """Sample a stream without replacement; `drifted=None` or `share=0` gives a stream without drift."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    base = base.iloc[rng.permutation(len(base))].reset_index(drop=True)
    from_drift = rng.random(n_after) < share if drifted is not None else np.zeros(n_after, dtype=bool)
    n_base = n_reference + n_before + int((~from_drift).sum())
    if n_base > len(base):
        raise UserError(f"the base pool has {len(base)} rows; this stream needs {n_base}")
    reference = base.iloc[:n_reference]
    before = base.iloc[n_reference:n_reference + n_before]
    spare = base.iloc[n_reference + n_before:n_base].reset_index(drop=True)
    after_rows = []
    drift_pool = (drifted.iloc[rng.permutation(len(drifted))].reset_index(drop=True)
                  if drifted is not None else None)
    used_base = used_drift = 0
    for take_drift in from_drift:
        if take_drift and drift_pool is not None:
            after_rows.append(drift_pool.iloc[used_drift % len(drift_pool)])
            used_drift += 1
        else:
            after_rows.append(spare.iloc[used_base])
            used_base += 1
    after = pd.DataFrame(after_rows, columns=base.columns)
    current = pd.concat([before, after], ignore_index=True)
    drifting = drifted is not None and share > 0 and n_after > 0
    return Stream(reference=reference.reset_index(drop=True), current=current,
                  drift_row=n_before if drifting else None)


def read_mmlu_pool(paths: list[str]) -> pd.DataFrame:
    """The shared MMLU stream files as canonical rows: prompt and Mixtral's correctness as quality."""
    import pandas as pd

    frames = [pd.read_csv(p) for p in paths]
    data = pd.concat(frames, ignore_index=True)
    return pd.DataFrame({"prompt": data["prompt"], "quality": data["mixtral_8x7b_instruct_correct"].astype(float),
                         "subject": data["subject"]})
