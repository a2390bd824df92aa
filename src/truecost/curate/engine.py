"""Where the steps run: in this process, in a local process pool, or on Ray Data. The steps are the same objects;
only the map phases are spread out (they are slice-independent by contract), reduce phases run on the driver."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from truecost.curate.document import Document
from truecost.curate.steps.base import Step, StepStats, iter_chunks, run_phase
from truecost.errors import MissingExtra

EngineName = Literal["local", "ray"]
ProgressFn = Callable[[str, int, int], None]  # (what is running, documents just finished, documents in all)


@dataclass
class PipelineResult:
    """Documents that remain after all steps, and each step's stats (removals included), in step order."""

    kept: list[Document]
    stats: list[StepStats] = field(default_factory=list)


def map_slice(steps: list[Step], docs: list[Document]) -> tuple[list[Document], list[StepStats]]:
    """Run the map phases of consecutive steps over one slice (the unit every executor ships)."""
    stats = [StepStats(step.name) for step in steps]
    for step, st in zip(steps, stats, strict=True):
        docs = run_phase(step, "map", docs, st, count_in=True)
    return docs, stats


def _map_slice_pickled(payload: bytes) -> bytes:
    steps, docs = pickle.loads(payload)
    return pickle.dumps(map_slice(steps, docs), protocol=pickle.HIGHEST_PROTOCOL)


def _segments(steps: list[Step]) -> list[tuple[list[Step], Step | None]]:
    """Split steps into (consecutive map phases, then one reduce phase or None)."""
    out: list[tuple[list[Step], Step | None]] = []
    maps: list[Step] = []
    for step in steps:
        if step.has_map:
            maps.append(step)
        if step.has_reduce:
            out.append((maps, step))
            maps = []
    if maps:
        out.append((maps, None))
    return out


class Executor:
    """Runs map phases over slices; subclasses decide where. `run` is the same for all of them."""

    chunk_docs = 256

    def map_all(self, steps: list[Step], docs: list[Document], progress: ProgressFn | None
                ) -> tuple[list[Document], list[StepStats]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers."""

    def run(self, steps: list[Step], docs: list[Document], progress: ProgressFn | None = None) -> PipelineResult:
        stats_by_name: dict[str, StepStats] = {step.name: StepStats(step.name) for step in steps}
        for maps, reducer in _segments(steps):
            if maps:
                docs, slice_stats = self.map_all(maps, docs, progress)
                for st in slice_stats:
                    stats_by_name[st.step].merge(st)
            if reducer is not None:
                st = stats_by_name[reducer.name]
                docs = run_phase(reducer, "reduce", docs, st, count_in=not reducer.has_map)
                if progress:
                    progress(f"{reducer.name} (whole corpus)", len(docs), len(docs))
        return PipelineResult(docs, [stats_by_name[step.name] for step in steps])


def _merge_slices(results: list[tuple[list[Document], list[StepStats]]], steps: list[Step]
                  ) -> tuple[list[Document], list[StepStats]]:
    docs: list[Document] = []
    merged = [StepStats(step.name) for step in steps]
    for slice_docs, slice_stats in results:
        docs.extend(slice_docs)
        for total, st in zip(merged, slice_stats, strict=True):
            total.merge(st)
    return docs, merged


class LocalExecutor(Executor):
    """This process (workers=1) or a pool of forked processes; slices are merged back in input order."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def map_all(self, steps: list[Step], docs: list[Document], progress: ProgressFn | None
                ) -> tuple[list[Document], list[StepStats]]:
        label = "+".join(s.name for s in steps)
        results = []
        if self.workers == 1 or len(docs) <= self.chunk_docs:
            for chunk in iter_chunks(docs, self.chunk_docs):
                results.append(map_slice(steps, chunk))
                if progress:
                    progress(label, len(chunk), len(docs))
            return _merge_slices(results, steps)
        if self._pool is None:
            import multiprocessing

            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"))
        payloads = [pickle.dumps((steps, chunk), protocol=pickle.HIGHEST_PROTOCOL)
                    for chunk in iter_chunks(docs, self.chunk_docs)]
        for chunk_result in self._pool.map(_map_slice_pickled, payloads):
            result = pickle.loads(chunk_result)
            results.append(result)
            if progress:
                progress(label, result[1][0].docs_in, len(docs))
        return _merge_slices(results, steps)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


class RayExecutor(Executor):
    """Ray Data: slices become blocks of pickled documents, `map_batches` runs the same `map_slice` on them."""

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise MissingExtra("ray[data]", "scale", "--engine ray") from exc
        self.ray = ray
        self._started = False
        import logging

        from ray.data import DataContext

        # Ray Data's own progress bars and INFO lines would flood stderr; truecost shows its own progress bar.
        DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            if address or os.environ.get("RAY_ADDRESS"):
                kwargs["address"] = address or os.environ["RAY_ADDRESS"]
            else:
                kwargs["num_cpus"] = workers or os.cpu_count() or 1
            ray.init(**kwargs)
            self._started = True

    def map_all(self, steps: list[Step], docs: list[Document], progress: ProgressFn | None
                ) -> tuple[list[Document], list[StepStats]]:
        import numpy as np
        import ray.data

        label = "+".join(s.name for s in steps)
        chunks = list(iter_chunks(docs, self.chunk_docs))
        items = [{"slice": i, "payload": pickle.dumps((steps, chunk), protocol=pickle.HIGHEST_PROTOCOL)}
                 for i, chunk in enumerate(chunks)]

        def run_batch(batch: dict[str, Any]) -> dict[str, Any]:
            return {"slice": batch["slice"],
                    "payload": np.array([_map_slice_pickled(p) for p in batch["payload"]], dtype=object)}

        source = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
        ds = source.map_batches(run_batch, batch_size=1, batch_format="numpy")
        by_slice: dict[int, tuple[list[Document], list[StepStats]]] = {}
        for row in ds.iter_rows():
            result = pickle.loads(row["payload"])
            by_slice[int(row["slice"])] = result
            if progress:
                progress(label, result[1][0].docs_in if result[1] else 0, len(docs))
        # Ray may finish blocks in any order; put slices back in input order so output equals the local engine's.
        return _merge_slices([by_slice[i] for i in range(len(chunks))], steps)

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False


def make_executor(engine: EngineName, workers: int = 1) -> Executor:
    """The executor for `--engine`."""
    if engine == "ray":
        return RayExecutor(workers if workers > 1 else None)
    return LocalExecutor(workers)
