"""train: cost-aware training on the Hugging Face Trainer, with a pre-flight estimate, a hard budget and the
measured cost beside the estimate in the ledger.

    from truecost.train import make_config, train
    result = train(make_config(max_steps=200, budget={"max_usd": 0.01}))

The same pre-flight, budget and metering work inside any Trainer (or TRL's SFTTrainer / DPOTrainer):

    from truecost.train.callbacks import truecost_callbacks
    Trainer(..., callbacks=truecost_callbacks(max_usd=5.0, ledger=Ledger())).train()

`tune` runs an Optuna study of such runs with pruning; `plan` prints the estimate and the cheapest config that fits.
Heavy libraries (torch, transformers, optuna, trl) are imported inside the functions that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from truecost.train.config import BUILTIN_TEXT, TrainConfig, load_train_config, make_config, with_value
from truecost.train.result import TrainResult

if TYPE_CHECKING:
    from truecost.train.callbacks import truecost_callbacks
    from truecost.train.checkpoints import resume_point
    from truecost.train.runner import train

_HOME = {"train": "runner", "truecost_callbacks": "callbacks", "resume_point": "checkpoints"}

__all__ = ["BUILTIN_TEXT", "TrainConfig", "TrainResult", "load_train_config", "make_config", "resume_point",
           "train", "truecost_callbacks", "with_value"]


def __getattr__(name: str) -> Any:
    # transformers is imported on first use, so `truecost train --plan` and config checks stay quick
    if name not in _HOME:
        raise AttributeError(f"module 'truecost.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"truecost.train.{_HOME[name]}"), name)
