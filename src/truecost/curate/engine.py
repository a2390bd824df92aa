"""Where the tasks run: in this process, in a pool of local processes, or on a Ray cluster. What the work is
lives in `passes` and `stages`; every task is a module-level function of small, picklable arguments that reads
and writes files and returns a small summary, so the same task list runs on any executor with the same result."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Literal

from truecost.errors import MissingExtra

EngineName = Literal["local", "ray"]
ProgressFn = Callable[[str, int, int], None]  # (what is running, tasks just finished, tasks in all)
Task = Callable[[Any], dict[str, Any]]


class Executor:
    """Runs a list of independent tasks and returns their results in order."""

    parallelism = 1

    def map(self, fn: Task, args: list[Any], label: str, progress: ProgressFn | None = None
            ) -> list[dict[str, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers."""


class LocalExecutor(Executor):
    """This process (workers=1), or a pool of forked processes."""

    def __init__(self, workers: int = 1) -> None:
        self.parallelism = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Task, args: list[Any], label: str, progress: ProgressFn | None = None
            ) -> list[dict[str, Any]]:
        results = []
        if self.parallelism == 1 or len(args) <= 1:
            for a in args:
                results.append(fn(a))
                if progress:
                    progress(label, 1, len(args))
            return results
        if self._pool is None:
            import multiprocessing

            self._pool = ProcessPoolExecutor(self.parallelism, mp_context=multiprocessing.get_context("fork"))
        for result in self._pool.map(fn, args):
            results.append(result)
            if progress:
                progress(label, 1, len(args))
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


class RayExecutor(Executor):
    """Ray tasks, spread over the cluster's nodes; joins the cluster at `RAY_ADDRESS` when it is set."""

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise MissingExtra("ray", "scale", "--engine ray") from exc
        self.ray = ray
        self._started = False
        self._task: Any = None
        self.nodes: set[str] = set()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            if address or os.environ.get("RAY_ADDRESS"):
                kwargs["address"] = address or os.environ["RAY_ADDRESS"]
            else:
                kwargs["num_cpus"] = workers or os.cpu_count() or 1
            ray.init(**kwargs)
            self._started = True
        self.parallelism = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def map(self, fn: Task, args: list[Any], label: str, progress: ProgressFn | None = None
            ) -> list[dict[str, Any]]:
        if self._task is None:
            self._task = self.ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_run_on_node)
        refs = [self._task.remote(fn, a) for a in args]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[dict[str, Any]] = [{} for _ in refs]
        pending = list(refs)
        while pending:
            ready, pending = self.ray.wait(pending, num_returns=1)
            for ref in ready:
                result = self.ray.get(ref)
                self.nodes.add(result.pop("_node", ""))
                results[index[ref]] = result
                if progress:
                    progress(label, 1, len(args))
        return results

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False


def _run_on_node(fn: Task, arg: Any) -> dict[str, Any]:
    """A task on a Ray worker, reporting which node ran it (so a run can say how many nodes took part)."""
    import ray

    result = dict(fn(arg))
    result["_node"] = ray.get_runtime_context().get_node_id()
    return result


def make_executor(engine: EngineName, workers: int = 1) -> Executor:
    """The executor for `--engine`."""
    if engine == "ray":
        return RayExecutor(workers if workers > 1 else None)
    return LocalExecutor(workers)
