"""Host and device memory: readings for the logs, and the guard that stops a run before the OOM killer does.

The guard is a thread that samples the resident memory of the process tree (psutil) twice a second. Its budget is a
share of the memory this process can really have: the smaller of the machine's RAM and the cgroup limit that Colab
and Kaggle containers set. Past ``memory.host_limit`` it trips, and the training loop checkpoints, writes
``stop_reason: "host_memory"`` and exits 75, so a leak or an oversized buffer ends a run cleanly instead of taking
the notebook kernel with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import psutil
import tensorflow as tf

from tfkit.units import format_bytes


def host_rss_bytes() -> int:
    """Resident memory of this process and its children (tf.data may fork none, but user code can)."""
    process = psutil.Process(os.getpid())
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            continue  # a child that ended while we looked
    return total


def device_peak_bytes(device_kind: str) -> int | None:
    """Peak memory of the first accelerator since the process started, or None on CPU or when TF cannot tell."""
    if device_kind == "CPU":
        return None
    try:
        return int(tf.config.experimental.get_memory_info(f"{device_kind}:0")["peak"])
    except (ValueError, tf.errors.OpError):
        return None


def device_total_bytes(device_kind: str, index: int = 0) -> int | None:
    """Total memory of one accelerator, or None when it cannot be read locally.

    TensorFlow reports what its allocator holds, not the card's size; for a GPU the size comes from ``nvidia-smi``
    (a local query, no network).
    """
    if device_kind != "GPU" or shutil.which("nvidia-smi") is None:
        return None
    try:
        output = subprocess.run(
            ["nvidia-smi", f"--id={index}", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return int(float(output.strip().splitlines()[0]) * 2**20)  # MiB
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def cgroup_limit_bytes() -> int | None:
    """This process's cgroup memory limit (v2 or v1), or None when there is none."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # v1 writes "no limit" as a huge number
            return int(text)
    return None


def host_budget_bytes() -> int:
    """The memory this process can really have: RAM, or the cgroup limit when that is smaller."""
    total = psutil.virtual_memory().total
    limit = cgroup_limit_bytes()
    return min(total, limit) if limit else total


class HostMemoryGuard:
    """Watches the process tree's resident memory against a limit, in a daemon thread.

    Args:
        limit_bytes: Trip above this many bytes.
        attribution: What to name as the largest consumer tfkit can attribute, for the message.
        interval_seconds: Sampling period.
    """

    def __init__(self, *, limit_bytes: int, attribution: str, interval_seconds: float = 0.5) -> None:
        self.limit_bytes = limit_bytes
        self.attribution = attribution
        self.interval_seconds = interval_seconds
        self.tripped: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="tfkit-host-memory-guard", daemon=True)

    def __enter__(self) -> HostMemoryGuard:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.is_set():
            used = host_rss_bytes()
            if used > self.limit_bytes:
                self.tripped = (
                    f"host memory {format_bytes(used)} passed memory.host_limit {format_bytes(self.limit_bytes)}; "
                    f"{self.attribution}"
                )
                return
            self._stop.wait(self.interval_seconds)
