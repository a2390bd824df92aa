"""Prompt embeddings for routers, computed offline: all-MiniLM-L6-v2 from its PyPI package, or TF-IDF + SVD.

Both give L2-normalised dense vectors, so cosine similarity is a dot product. No network call is ever made.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from truecost import minilm
from truecost.errors import UserError
from truecost.minilm import MINILM_PIP, minilm_dir

# `minilm` uses the fastest installed MiniLM backend; `minilm-<backend>` names one (torch is the reference).
# `minilm-static` is model2vec's static distillation of the same weights: another function of the text, ~100x
# less CPU per prompt (the gateway's fast router; see docs/route.md for its routing quality beside MiniLM's).
EMBEDDERS = ("auto", "minilm", "minilm-int8", "minilm-onnx", "minilm-torch", "minilm-static", "tfidf")

_TFIDF_FITS: dict[tuple[int, int, str], tuple[dict[str, int], np.ndarray, np.ndarray]] = {}

# Embeddings by (backend, max tokens, prompt text): a prompt seen before (a retry, a second router, eval after fit)
# costs nothing.
_MINILM_CACHE: dict[tuple[str, int, str], np.ndarray] = {}
_MINILM_CACHE_MAX = 200_000


def clear_cache() -> None:
    """Forget cached embeddings (benchmarks measure cold prompts)."""
    _MINILM_CACHE.clear()


def route_threads() -> int:
    """CPU threads per embedding call: 1 unless TRUECOST_ROUTE_THREADS says more.

    A routing decision embeds one short prompt, where more threads mostly wait on each other (and on a shared
    machine slow every call); the gateway gets its throughput from batching instead.
    """
    return max(1, int(os.environ.get("TRUECOST_ROUTE_THREADS", "1")))


class MiniLMEmbedder:
    """Sentence embeddings from all-MiniLM-L6-v2 (mean pooling over tokens, then L2 norm, as the model card says).

    `backend`: `auto` (int8 ONNX Runtime when installed, else torch), `int8`, `onnx` or `torch` (the reference),
    or `static` (model2vec's distillation of the same weights); see `truecost.minilm.encode`.
    """

    kind = "minilm"

    def __init__(self, max_tokens: int = 256, batch_size: int = 32, backend: str = "auto") -> None:
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.backend = backend

    @property
    def fast(self) -> bool:
        """A static embedding costs tens of microseconds; the transformer, milliseconds."""
        return self.backend == "static"

    @property
    def name(self) -> str:
        """What embeds, for records and messages: `minilm-int8`, `minilm-static`, ... (`auto` resolved). `kind`
        stays `minilm` for every backend: it names the saved format, not the vectors."""
        return f"minilm-{minilm.resolve_backend(self.backend) if self.backend == 'auto' else self.backend}"

    def fit(self, prompts: Sequence[str]) -> MiniLMEmbedder:
        """Nothing to learn: the model is pretrained."""
        return self

    def transform(self, prompts: Sequence[str]) -> np.ndarray:
        """One 384-d unit vector per prompt."""
        if minilm_dir() is None:
            raise UserError(f"this router embeds prompts with all-MiniLM-L6-v2; install it: {MINILM_PIP}")
        backend = minilm.resolve_backend(self.backend)
        keys = [(backend, self.max_tokens, p) for p in prompts]
        todo = [k for k in dict.fromkeys(keys) if k not in _MINILM_CACHE]
        if todo:
            vectors = minilm.encode([k[2] for k in todo], max_tokens=self.max_tokens, batch_size=self.batch_size,
                                    backend=backend, threads=route_threads())
            if len(_MINILM_CACHE) + len(todo) > _MINILM_CACHE_MAX:
                _MINILM_CACHE.clear()
            _MINILM_CACHE.update(zip(todo, vectors, strict=True))
        if not keys:
            return np.zeros((0, minilm.dim(backend)), np.float32)
        return np.stack([_MINILM_CACHE[k] for k in keys])

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"kind": self.kind, "max_tokens": self.max_tokens, "batch_size": self.batch_size,
                "backend": self.backend}, {}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> MiniLMEmbedder:
        # Routers saved before backends existed used torch; `auto` gives the same vectors (cosine >= 0.99) faster.
        return cls(max_tokens=int(meta["max_tokens"]), batch_size=int(meta["batch_size"]),
                   backend=str(meta.get("backend", "auto")))


class TfidfEmbedder:
    """TF-IDF over word 1-2 grams, projected to `dims` with a truncated SVD (LSA), then L2-normalised."""

    kind = "tfidf"
    name = "tfidf"

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
    """`minilm[-backend]`, `tfidf`, or `auto` (MiniLM when its package is installed, else TF-IDF)."""
    if kind == "auto":
        kind = "minilm" if minilm_dir() is not None else "tfidf"
    if kind == "tfidf":
        return TfidfEmbedder()
    if kind not in EMBEDDERS:
        raise UserError(f"unknown embedder {kind!r}; choose one of {', '.join(EMBEDDERS)}")
    if minilm_dir() is None:
        raise UserError(f"the minilm embedder needs its model package: {MINILM_PIP}")
    backend = kind.split("-", 1)[1] if "-" in kind else "auto"
    minilm.resolve_backend(backend)  # a missing ONNX Runtime is reported now, not at the first request
    return MiniLMEmbedder(backend=backend)


def embedder_from_state(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Embedder:
    """Rebuild a saved embedder."""
    if meta["kind"] == "minilm":
        return MiniLMEmbedder.from_state(meta, arrays)
    if meta["kind"] == "tfidf":
        return TfidfEmbedder.from_state(meta, arrays)
    raise UserError(f"unknown saved embedder kind {meta['kind']!r}")
