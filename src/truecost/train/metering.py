"""What a run measured about itself: energy (NVML), FLOPs, MFU, peak memory, host RAM.

Energy on NVIDIA GPUs comes from NVML's cumulative energy counter. Elsewhere the ledger estimates it from
CPU-seconds x `hardware.cpu_watts_per_core` (plus GPU-hours x rated watts) x PUE: see
`truecost.estimate.pricing.compute_energy_kwh`.
"""

from __future__ import annotations

import functools
import os
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any


def host_memory_gib() -> float:
    """Physical RAM of this machine, the 'device memory' of a CPU run."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return 16.0


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20


def rss_gib() -> float:
    """Resident memory of this process now (Linux /proc; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return peak_rss_gib()
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**30


def describe_job(world_size: int) -> str:
    """The hardware of a whole job for its ledger run, e.g. `gpu: 8 x NVIDIA H100` or `cpu: 2 proc x 2 cores`."""
    import torch

    if torch.cuda.is_available():
        return f"gpu: {world_size} x {torch.cuda.get_device_name(0)}"
    return f"cpu: {world_size} proc x {os.cpu_count() or 1} cores"


def flops_per_token(params: int, trainable: int, layers: int, hidden: int, seq_len: int) -> float:
    """Training FLOPs per token: 2N forward + 2N backward through activations + 2N weight gradients (trainable
    weights only), plus attention scores (PaLM appendix B: 12 * layers * hidden * seq_len)."""
    weight_grads = 2.0 * trainable
    return 4.0 * params + weight_grads + 12.0 * layers * hidden * seq_len


@functools.lru_cache(maxsize=8)
def measure_peak_flops(device: str, dtype: Any, seconds: float = 0.2) -> float:
    """Achievable dense matmul FLOP/s on `device` in `dtype`: the denominator of MFU where no rated peak is known.

    On a CPU there is no datasheet figure for a slice of a shared machine, so we measure what a large matmul
    reaches on the threads this process has.
    """
    import torch

    size = 1024
    a = torch.randn(size, size, device=device, dtype=dtype or torch.float32)
    b = torch.randn(size, size, device=device, dtype=dtype or torch.float32)
    torch.matmul(a, b)  # warm-up: kernel selection
    runs = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.matmul(a, b)
        runs += 1
    if device == "cuda":
        torch.cuda.synchronize()
    return 2.0 * size**3 * runs / (time.perf_counter() - start)


@dataclass
class GpuEnergy:
    """Energy used by the visible NVIDIA GPUs between `start()` and `kwh()`, from NVML; None without NVML."""

    _handles: list[Any] | None = None
    _start_mj: list[int] | None = None

    def start(self) -> GpuEnergy:
        """Read the counters now."""
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._start_mj = [pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles]
        except Exception:  # noqa: BLE001 - no NVML, no driver or an old GPU: fall back to the estimate
            self._handles = None
        return self

    def kwh(self) -> float | None:
        """GPU energy since start() in kWh (IT power, before PUE), or None when NVML could not be read."""
        if not self._handles or self._start_mj is None:
            return None
        try:
            import pynvml

            now = [pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles]
        except Exception:  # noqa: BLE001
            return None
        return sum(n - s for n, s in zip(now, self._start_mj, strict=True)) / 3.6e9
