"""Reading host and device memory, for the console, TensorBoard and the summary."""

from __future__ import annotations

import os

import psutil
import tensorflow as tf


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


def format_bytes(value: int | None) -> str:
    """``1.2 GB``-style text, or ``n/a``."""
    if value is None:
        return "n/a"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value = value / 1024  # type: ignore[assignment]
    return f"{value:.1f} TB"
