"""train: a cost-aware training runner for Hugging Face models, with a pre-flight estimate and a hard budget.

    from truecost.train import make_config, train
    result = train(make_config(max_steps=200, budget={"max_usd": 0.01}))

`tune` runs an Optuna study of such runs with pruning; `plan` prints the estimate and the cheapest config that fits.
Heavy libraries (torch, transformers, optuna) are imported inside the functions that need them.
"""

from truecost.train.config import BUILTIN_TEXT, TrainConfig, load_train_config, make_config, with_value
from truecost.train.loop import TrainResult, train

__all__ = ["BUILTIN_TEXT", "TrainConfig", "TrainResult", "load_train_config", "make_config", "train", "with_value"]
