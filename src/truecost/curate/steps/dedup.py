"""exact and near: whole-corpus de-duplication steps; the algorithms live in `truecost.curate.dedup`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from truecost.curate.document import Document
from truecost.curate.steps.base import Step, StepStats
from truecost.errors import UserError


def _dedup_function(name: str) -> Any:
    """The dedup module's function `name`, or None while that module has not landed."""
    try:
        from truecost.curate import dedup
    except ImportError:
        return None
    return getattr(dedup, name, None)


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return {}


class _DedupStep(Step):
    """Map phase: per-document keys/signatures (spread by the engine); reduce phase: clusters on the driver."""

    has_map: ClassVar[bool] = True
    has_reduce: ClassVar[bool] = True
    function: ClassVar[str] = ""

    def __init__(self, params: dict[str, Any] | None = None, index_dir: Path | None = None) -> None:
        self.params = dict(params or {})
        self.index_dir = index_dir

    def keys(self, docs: list[Document]) -> list[Any] | None:
        """Per-document map output, or None to leave everything to the whole-corpus function."""
        return None

    def cluster(self, docs: list[Document], keys: list[Any]) -> Any:
        """The driver step over the map outputs, in document order."""
        raise NotImplementedError

    def map(self, docs: list[Document], stats: StepStats) -> list[Document]:
        keys = self.keys(docs)
        if keys is not None:
            stats.carry.update(zip((d.id for d in docs), keys, strict=True))
        return docs

    def reduce(self, docs: list[Document], stats: StepStats) -> list[Document]:
        carried = stats.carry
        stats.carry = {}
        if docs and all(d.id in carried for d in docs):
            result = self.cluster(docs, [carried[d.id] for d in docs])
        else:
            fn = _dedup_function(self.function)
            if fn is None:
                stats.skipped = f"truecost.curate.dedup.{self.function} is not available"
                return docs
            result = self.call(fn, docs)
        return self.apply(result, docs, stats)

    def call(self, fn: Any, docs: list[Document]) -> Any:
        return fn(docs, **self.params)

    def apply(self, result: Any, docs: list[Document], stats: StepStats) -> list[Document]:
        stats.clusters.update(result.cluster_of)
        removed: dict[str, dict[str, Any]] = result.removed
        for key, value in _as_dict(getattr(result, "stats", None)).items():
            if isinstance(value, int) and not isinstance(value, bool):
                stats.changes[key] += value
        kept = []
        for doc in docs:
            reason = removed.get(doc.id)
            if reason is None:
                kept.append(doc)
                continue
            reason = dict(reason)
            rule = str(reason.pop("rule", self.name))
            stats.remove(doc, rule, reason.pop("similarity", reason.pop("value", None)),
                         reason.pop("threshold", None), **reason)
        return kept


class ExactDedupStep(_DedupStep):
    """Removes documents whose normalised text is identical to a kept one (the first occurrence is kept)."""

    name: ClassVar[str] = "exact"
    function: ClassVar[str] = "find_exact_duplicates"

    def keys(self, docs: list[Document]) -> list[Any] | None:
        fn = _dedup_function("exact_key")
        if fn is None or self.params or _dedup_function("cluster_exact_keys") is None:
            return None  # parameters are for find_exact_duplicates to accept or refuse
        return [fn(d.words) for d in docs]

    def cluster(self, docs: list[Document], keys: list[Any]) -> Any:
        return _dedup_function("cluster_exact_keys")([d.id for d in docs], keys)


class NearDedupStep(_DedupStep):
    """Removes near-duplicates (MinHash LSH + exact verification), optionally against an index on disk."""

    name: ClassVar[str] = "near"
    function: ClassVar[str] = "find_near_duplicates"

    def _settings(self) -> Any:
        from truecost.curate.dedup import NearDedupParams

        params = {k: v for k, v in self.params.items() if k != "update_index"}
        try:
            return NearDedupParams(**params)
        except TypeError as exc:
            raise UserError(f"unknown near-dedup parameter: {exc}") from None

    def keys(self, docs: list[Document]) -> list[Any] | None:
        batch = _dedup_function("near_signatures")
        if batch is None or _dedup_function("cluster_signatures") is None:
            return None
        return list(batch([(d.id, d.words) for d in docs], self._settings()))

    def cluster(self, docs: list[Document], keys: list[Any]) -> Any:
        from truecost.curate.dedup.index import NearIndex

        settings = self._settings()
        index = NearIndex.load(Path(self.index_dir), settings) if self.index_dir is not None else None
        result = _dedup_function("cluster_signatures")(keys, settings, index=index)
        if index is not None and self.params.get("update_index", True):
            index.append(keys, [result.cluster_of[s.id] or s.id for s in keys])
        return result

    def call(self, fn: Any, docs: list[Document]) -> Any:
        return fn(docs, index_dir=self.index_dir, **self.params)
