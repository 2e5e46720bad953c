"""``python -m tfkit.doctor``: what this machine can train on, and what is in the way. ``--json`` for machines.

It reports the TensorFlow and Keras versions and build (CUDA, TPU support); the devices (TPU signs, each GPU's
memory and compute capability, float16/bfloat16 support); host memory with any cgroup limit (Colab's and Kaggle's
containers have one); free disk in the workdir; and the processes that hold ``/dev/nvidia*`` or ``/dev/accel*``,
read from ``/proc``. It never kills anything: it prints the command that would. It ends with recommendations.

Nothing here touches the network.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import psutil
import tensorflow as tf
from absl import flags

from tfkit import distribute, memory, precision, units
from tfkit.cli import run as run_cli
from tfkit.errors import UserError

_ACCELERATOR_FILES = ("/dev/nvidia", "/dev/accel", "/dev/vfio")


def accelerator_holders(proc: str = "/proc") -> list[dict[str, Any]]:
    """Processes with an open ``/dev/nvidia*``, ``/dev/accel*`` or ``/dev/vfio/*`` file: pid, command, memory."""
    holders = []
    for entry in Path(proc).iterdir():
        if not entry.name.isdigit():
            continue
        devices = set()
        try:
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith(_ACCELERATOR_FILES):
                    devices.add(target)
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            rss = psutil.Process(int(entry.name)).memory_info().rss
        except (OSError, psutil.Error):
            continue  # gone, or not ours to read
        if devices:
            holders.append(
                {
                    "pid": int(entry.name),
                    "command": command[:200],
                    "rss_bytes": rss,
                    "devices": sorted(devices),
                    "to_stop_it": f"kill {entry.name}",
                }
            )
    return holders


def report(workdir: str = ".", *, config: str | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Everything the doctor knows, as JSON-ready data.

    Args:
        workdir: Where free disk is measured.
        config: A run config (path or bundled name): recommend the per-replica batch the finder chooses for it.
        overrides: ``a.b=value`` strings for that config.
    """
    build = tf.sysconfig.get_build_info()
    packages = {}
    for name in ("tensorflow", "tensorflow-cpu", "tensorflow-tpu", "libtpu", "libtpu-nightly", "keras"):
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    tpu_support = any(name in packages for name in ("tensorflow-tpu", "libtpu", "libtpu-nightly"))
    gpus = []
    for index, gpu in enumerate(tf.config.list_physical_devices("GPU")):
        details = tf.config.experimental.get_device_details(gpu)
        capability = details.get("compute_capability")
        try:
            used = tf.config.experimental.get_memory_info(f"GPU:{index}")["current"]
        except (ValueError, tf.errors.OpError):
            used = None
        gpus.append(
            {
                "name": details.get("device_name", gpu.name),
                "compute_capability": list(capability) if capability else None,
                "memory_total_bytes": memory.device_total_bytes("GPU", index),
                "memory_used_bytes": used,
                "float16": bool(capability and tuple(capability) >= (7, 0)),
                "bfloat16": bool(capability and tuple(capability) >= (8, 0)),
            }
        )
    host = psutil.virtual_memory()
    limit = memory.cgroup_limit_bytes()
    tpu_address = distribute.tpu_signs()
    device_kind = "TPU" if tpu_address and tpu_support else ("GPU" if gpus else "CPU")
    capability = tuple(gpus[0]["compute_capability"]) if gpus and gpus[0]["compute_capability"] else None
    chosen = precision.choose("auto", device_kind=device_kind, gpu_compute_capability=capability)
    recommendations = [f"precision: auto will use {chosen}"]
    if tpu_address and not tpu_support:
        recommendations.append(
            f"a TPU looks present ({tpu_address}) but this TensorFlow cannot drive it (no tensorflow-tpu/libtpu; "
            "Kaggle's TPU image ships tensorflow-cpu): install tensorflow-tpu, see BUILD.md"
        )
    holders = accelerator_holders()
    if holders:
        recommendations.append(f"{len(holders)} process(es) hold an accelerator; stop them before training if stale")
    batch = None
    if config is not None:
        from tfkit import train  # only with --config: importing it is slow, and it builds the model

        with contextlib.redirect_stdout(io.StringIO()):  # the finder's own line; the report says it below
            batch = train.find_batch(config, overrides)
        recommendations.append(
            f"per-replica batch: {batch['per_replica_batch_size']} x {batch['grad_accum_steps']} accumulation "
            f"({batch['reason']}; tried {', '.join(str(trial['batch']) for trial in batch['trials'])})"
        )
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": sys.version.split()[0],
        "packages": packages,
        "build": {
            "cuda": bool(build.get("is_cuda_build")),
            "cuda_version": build.get("cuda_version"),
            "cudnn_version": build.get("cudnn_version"),
            "tpu_support": tpu_support,
        },
        "devices": {
            "cpu_cores": os.cpu_count(),
            "gpus": gpus,
            "tpu": {"signs": tpu_address, "usable": bool(tpu_address and tpu_support)},
        },
        "host_memory": {
            "total_bytes": host.total,
            "available_bytes": host.available,
            "cgroup_limit_bytes": limit,
        },
        "disk": {"workdir": str(Path(workdir).resolve()), "free_bytes": shutil.disk_usage(workdir).free},
        "accelerator_holders": holders,
        "batch": batch,
        "recommendations": recommendations,
    }


def _text(data: dict[str, Any]) -> str:
    gib = 2**30
    lines = [
        f"TensorFlow {data['tensorflow']}, Keras {data['keras']}, Python {data['python']}",
        f"build: CUDA {'yes' if data['build']['cuda'] else 'no'}, "
        f"TPU support {'yes' if data['build']['tpu_support'] else 'no'}",
        f"CPU cores: {data['devices']['cpu_cores']}",
    ]
    for gpu in data["devices"]["gpus"]:
        lines.append(
            f"GPU {gpu['name']}: {units.format_bytes(gpu['memory_used_bytes'])} used of "
            f"{units.format_bytes(gpu['memory_total_bytes'])}, compute capability {gpu['compute_capability']}, "
            f"float16 {gpu['float16']}, bfloat16 {gpu['bfloat16']}"
        )
    if not data["devices"]["gpus"]:
        lines.append("GPUs: none")
    tpu = data["devices"]["tpu"]
    lines.append(
        f"TPU: {'signs at ' + tpu['signs'] if tpu['signs'] else 'no signs'}{', usable' if tpu['usable'] else ''}"
    )
    host = data["host_memory"]
    limit = host["cgroup_limit_bytes"]
    lines.append(
        f"host memory: {host['available_bytes'] / gib:.1f} of {host['total_bytes'] / gib:.1f} GiB available"
        + (f", cgroup limit {limit / gib:.1f} GiB" if limit else "")
    )
    lines.append(f"disk: {data['disk']['free_bytes'] / gib:.1f} GiB free in {data['disk']['workdir']}")
    for holder in data["accelerator_holders"]:
        lines.append(
            f"holds {', '.join(holder['devices'])}: pid {holder['pid']} ({holder['rss_bytes'] / gib:.1f} GiB) "
            f"{holder['command']} — to stop it: {holder['to_stop_it']}"
        )
    lines += [f"recommend: {line}" for line in data["recommendations"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code."""
    values = flags.FlagValues()
    flags.DEFINE_boolean("json", False, "Print JSON for machines.", flag_values=values)
    flags.DEFINE_string("workdir", ".", "Where free disk is measured.", flag_values=values)
    flags.DEFINE_string(
        "config", None, "A run config: recommend the per-replica batch the finder chooses.", flag_values=values
    )
    flags.DEFINE_multi_string("set", [], "Override a key of that config: --set a.b=value.", flag_values=values)
    try:
        values(list(argv if argv is not None else sys.argv))
    except flags.Error as error:
        raise UserError(
            f"{error}. Usage: python -m tfkit.doctor [--json] [--workdir DIR] [--config CONFIG [--set a.b=value]]"
        ) from None
    data = report(values.workdir, config=values.config, overrides=values.set)
    print(json.dumps(data, indent=2) if values.json else _text(data))
    return 0


if __name__ == "__main__":
    run_cli(main)
