"""The work folder of a run (`OUT/_work`): intermediate files between passes, one completion marker per finished
task (as datatrove does), and the plan they belong to, so a killed run restarted with the same command skips
what was finished and ends with the same output."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from truecost.curate.sources import filesystem, join, open_file

WORK_DIR = "_work"


@dataclass(frozen=True)
class WorkDir:
    """A folder (path or URL) of task outputs and markers; every method is safe to call from any worker."""

    root: str

    def path(self, *parts: str) -> str:
        return join(self.root, *parts)

    # -- markers --------------------------------------------------------------------------------------------
    def _marker(self, stage: str, task: str) -> str:
        return self.path("done", stage, f"{task}.json")

    def done(self, stage: str, task: str) -> dict[str, Any] | None:
        """What a finished task returned, or None when it has not finished."""
        fs, path = filesystem(self._marker(stage, task))
        try:
            with fs.open(path, "rb") as fh:
                result: dict[str, Any] = json.loads(fh.read())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return result

    def mark_done(self, stage: str, task: str, result: dict[str, Any]) -> None:
        """Record that a task finished (written last, atomically where the filesystem allows)."""
        write_bytes(self._marker(stage, task), json.dumps(result, default=str).encode("utf-8"))

    # -- files ----------------------------------------------------------------------------------------------
    def exists(self, *parts: str) -> bool:
        fs, path = filesystem(self.path(*parts))
        return bool(fs.exists(path))

    def glob(self, *parts: str) -> list[str]:
        fs, path = filesystem(self.path(*parts))
        protocol = self.root.split("://", 1)[0] + "://" if "://" in self.root else ""
        return sorted(protocol + p if protocol and not p.startswith(protocol) else p for p in fs.glob(path))

    def remove(self) -> None:
        fs, path = filesystem(self.root)
        if fs.exists(path):
            fs.rm(path, recursive=True)

    def save_array(self, name: str, array: np.ndarray) -> None:
        with open_file(self.path(name), "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    def load_array(self, name: str) -> np.ndarray:
        return load_array(self.path(name))

    def load_arrays(self, pattern: str, dtype: Any, columns: int = 1) -> np.ndarray:
        """Every array saved under names matching `pattern`, concatenated ((n,) or (n, columns))."""
        parts = [load_array(f) for f in self.glob(pattern)]
        shape = (0,) if columns == 1 else (0, columns)
        return np.concatenate(parts) if parts else np.zeros(shape, dtype=dtype)


def load_array(url: str) -> np.ndarray:
    with open_file(url, "rb") as fh:
        array: np.ndarray = np.load(fh, allow_pickle=False)
    return array


def write_bytes(url: str, data: bytes) -> None:
    """Write a whole file; local files go through a temporary name and a rename, so readers never see half."""
    fs, path = filesystem(url)
    if "://" not in url or url.startswith("file://"):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return
    with open_file(url, "wb") as fh:
        fh.write(data)


class Appender:
    """Raw records appended to one file per key (partition files written batch by batch, read back whole)."""

    def __init__(self, work: WorkDir, pattern: str) -> None:
        self.work = work
        self.pattern = pattern  # e.g. "dedup1/near/keys/p{part}/s00003.bin"
        self.handles: dict[int, Any] = {}
        self.contexts: list[Any] = []

    def write(self, part: int, array: np.ndarray) -> None:
        if len(array) == 0:
            return
        handle = self.handles.get(part)
        if handle is None:
            ctx = open_file(self.work.path(self.pattern.format(part=part)), "wb")
            handle = ctx.__enter__()
            self.contexts.append(ctx)
            self.handles[part] = handle
        handle.write(np.ascontiguousarray(array).tobytes())

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.__exit__(None, None, None)
        self.contexts, self.handles = [], {}


def read_records(urls: list[str], dtype: np.dtype[Any]) -> np.ndarray:
    """Concatenated records of raw files written by `Appender`."""
    parts = []
    for url in urls:
        with open_file(url, "rb") as fh:
            parts.append(np.frombuffer(fh.read(), dtype=dtype))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def iter_jsonl(url: str) -> Iterator[bytes]:
    """Lines of a JSONL part file (none when it does not exist)."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        return
    with open_file(url, "rb") as fh:
        yield from fh
