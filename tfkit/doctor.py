"""``python -m tfkit.doctor``: what this machine can train on, and what is in the way. ``--json`` for machines.

It reports the TensorFlow and Keras versions and build (CUDA, TPU support); the devices (the TPU's generation,
chips, replicas and HBM from local signs, the PJRT variables ``import tfkit`` set, what is wrong with the
TensorFlow/libtpu pair and the command that fixes it, the offline bundle command for this machine's Python; each
GPU's memory and compute capability, float16/bfloat16 support); host memory with any cgroup limit (Colab's and Kaggle's
containers have one); free disk in the workdir; and the processes that hold ``/dev/nvidia*`` or ``/dev/accel*``,
read from ``/proc``. It never kills anything: it prints the command that would. It ends with recommendations.

Nothing here touches the network.
"""

from __future__ import annotations

import contextlib
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

import tfkit
from tfkit import cli, memory, precision, tpu_detect, tpu_runtime, units

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
    packages = tpu_runtime.installed_versions()
    tpu_support = "tensorflow-tpu" in packages
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
    tpu = _tpu_report()
    tpu_address = tpu["address"]
    device_kind = "TPU" if tpu_address and tpu_support else ("GPU" if gpus else "CPU")
    capability = tuple(gpus[0]["compute_capability"]) if gpus and gpus[0]["compute_capability"] else None
    chosen = precision.choose("auto", device_kind=device_kind, gpu_compute_capability=capability)
    recommendations = [f"precision: auto will use {chosen}"]
    if tpu_address and not tpu_support:
        recommendations.append(
            f"a TPU looks present ({tpu_address}) but this TensorFlow cannot drive it; the fix follows (BUILD.md, "
            "TensorFlow on a TPU VM)"
        )
    recommendations += tpu["problems"]
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
            "tpu": {**tpu, "signs": tpu_address, "usable": bool(tpu_address and tpu_support and not tpu["problems"])},
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


def _tpu_report() -> dict[str, Any]:
    """The TPU's facts, what ``import tfkit`` set for its runtime, the stack's problems and the bundle command."""
    setup = tfkit.tpu_setup
    facts = setup.facts if setup.facts.present else tpu_detect.detect()  # a TPU_NAME set after import counts too
    problems = list(setup.problems)
    if facts.present and not problems:
        pin = tpu_runtime.tensorflow_tpu_libtpu_pin()
        problems = tpu_runtime.stack_problems(tpu_runtime.installed_versions(), libtpu_pin=pin)
    details = facts.to_dict()
    evidence = details.pop("signs")  # "signs" stays the address, as doctor --json has always said
    return {
        **details,
        "evidence": evidence,
        "runtime": setup.to_dict(),
        "problems": problems,
        "bundle_command": tpu_runtime.bundle_command() if facts.present else None,
    }


def _tpu_lines(tpu: dict[str, Any]) -> list[str]:
    if not tpu["present"]:
        return ["TPU: no signs"]
    gib = 2**30
    shape = (
        f"{tpu['generation']}, {tpu['chips']} chip(s), {tpu['replicas']} replica(s) of "
        f"{tpu['hbm_per_replica_bytes'] / gib:.0f} GiB HBM, bfloat16"
        if tpu["replicas"]
        else f"generation {tpu['generation'] or 'unknown'}, chips {tpu['chips'] or 'unknown'}"
    )
    lines = [f"TPU: signs at {tpu['address']}: {shape}{', usable' if tpu['usable'] else ''}"]
    lines.append(f"TPU evidence: {'; '.join(tpu['evidence'])}")
    runtime = tpu["runtime"]
    if tpu["needs_pjrt"]:
        chosen = {**runtime["set_variables"], **runtime["kept_variables"]}
        lines.append(
            f"TPU runtime: PJRT, libtpu {runtime['library'] or 'not found'}; "
            + (", ".join(f"{name}={value}" for name, value in chosen.items()) or "no variables set")
            + (f" (yours: {', '.join(runtime['kept_variables'])})" if runtime["kept_variables"] else "")
        )
    lines.append(f"TPU offline bundle for this Python: {tpu['bundle_command']}")
    return lines


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
    lines += _tpu_lines(data["devices"]["tpu"])
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
    parser = cli.Parser("python -m tfkit.doctor", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--workdir", default=".", help="where free disk is measured")
    parser.add_argument(
        "--config", default=None, help="a run config: recommend the per-replica batch the finder chooses"
    )
    parser.add_argument("--set", action="append", default=[], help="override a key of that config: --set a.b=value")
    args = parser.parse_args(list(argv if argv is not None else sys.argv[1:]))
    data = report(args.workdir, config=args.config, overrides=args.set)
    print(json.dumps(data, indent=2) if args.json else _text(data))
    return 0


if __name__ == "__main__":
    cli.run(main)
