"""What never losing a run costs: checkpoint overhead, and how fast a resumed run gets back to training.

1. ``checkpoint_overhead``: the digits CNN trains on the bundled digits repeated 30 times (43,110 records, written
   once to a temporary folder), so an epoch lasts seconds rather than the bundled 0.3 s. It uses the default cadence
   (every epoch end and every 10 minutes). The overhead is the time spent saving over the time spent training, both
   from ``summary.json``. A denser cadence (every 100 steps) is shown for comparison.
2. ``resume_vs_cold``: time from starting ``python -m tfkit.train`` to its first logged training step, for a cold
   start and for a resume from a mid-epoch checkpoint. Each resume starts from a copy of the same stopped run.
   Cold and resumed starts alternate, and the medians are compared.

The last line is JSON.

    python benchmarks/checkpoint.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

import tfkit.train
from tfkit import config as config_lib
from tfkit import records

REPO = Path(__file__).resolve().parents[1]
DIGITS = REPO / "tfrecords" / "digits"
COPIES = 30


def bigger_digits(out: Path) -> Path:
    """Writes the bundled digits' train split COPIES times over, in 16 shards."""
    schema = records.read_schema(DIGITS / "train")
    raw = [bytes(r.numpy()) for r in tf.data.TFRecordDataset(schema.files(DIGITS / "train"))]
    image_feature = schema.features["image"]
    examples = []
    for serialized in raw:
        example = tf.train.Example.FromString(serialized)
        data = example.features.feature["image"].bytes_list.value[0]
        image = np.frombuffer(data, np.dtype(image_feature.dtype)).reshape(image_feature.shape)
        examples.append({"image": image, "label": np.int64(example.features.feature["label"].int64_list.value[0])})
    records.write_split(
        (example for _ in range(COPIES) for example in examples),
        out,
        split="train",
        features=schema.features,
        num_shards=16,
    )
    return out


def overhead(train_dir: Path, work: Path, extra: list[str]) -> tuple[float, dict]:
    overrides = [f"data.train={train_dir}", "train.epochs=3", "train.steps_per_execution=16", *extra]
    summary = tfkit.train.run(config_lib.load(REPO / "configs" / "digits.yaml"), workdir=work, overrides=overrides)
    return summary["checkpoint_seconds"] / summary["train_seconds"], summary


def first_step_seconds(workdir: Path, after_step: int, args: list[str]) -> float:
    """Runs tfkit until one call past ``after_step`` and returns seconds from spawn to that step's log."""
    stop = after_step + 8
    command = [
        sys.executable,
        "-m",
        "tfkit.train",
        "--workdir",
        str(workdir),
        *args,
        "--set",
        f"faults.preempt_at_step={stop}",
    ]
    spawned = time.time()
    subprocess.run(command, capture_output=True, check=False, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    first = None
    for path in sorted((workdir / "logs" / "train").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            if (
                event.step > after_step
                and event.wall_time >= spawned
                and any(v.tag == "loss" for v in event.summary.value)
            ):
                first = event.wall_time if first is None else min(first, event.wall_time)
    if first is None:
        raise RuntimeError(f"no training step was logged in {workdir}")
    return first - spawned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        train_dir = bigger_digits(scratch / "digits30" / "train")
        default_overhead, summary = overhead(train_dir, scratch / "default", [])
        dense_overhead, dense = overhead(train_dir, scratch / "dense", ["checkpoint.every_steps=100"])
        print(
            f"default cadence: {summary['checkpoint_seconds']:.2f} s saving in {summary['train_seconds']:.1f} s of "
            f"training over {summary['steps']} steps = {100 * default_overhead:.2f}%"
        )
        print(
            f"every 100 steps: {dense['checkpoint_seconds']:.2f} s saving in {dense['train_seconds']:.1f} s = "
            f"{100 * dense_overhead:.2f}%"
        )

        run_args = ["--set", "train.epochs=3"]
        stopped = scratch / "stopped"
        stop_at_30 = ["--workdir", str(stopped), *run_args, "--set", "faults.preempt_at_step=30"]
        preempted = subprocess.run(
            [sys.executable, "-m", "tfkit.train", *stop_at_30], capture_output=True, text=True, timeout=600
        )
        if preempted.returncode != 75:  # a clean, resumable stop
            raise RuntimeError(preempted.stderr[-2000:])
        cold_times, resume_times = [], []
        for repeat in range(args.repeats):
            cold_dir, resume_dir = scratch / f"cold{repeat}", scratch / f"resume{repeat}"
            shutil.copytree(stopped, resume_dir)
            pairs = [("cold", cold_dir, 0), ("resume", resume_dir, 30)]
            for name, workdir, after in pairs if repeat % 2 == 0 else reversed(pairs):
                seconds = first_step_seconds(workdir, after, run_args)
                (cold_times if name == "cold" else resume_times).append(seconds)
        cold, resumed = statistics.median(cold_times), statistics.median(resume_times)
        print(f"start to first step: cold {cold:.2f} s {cold_times}, resumed {resumed:.2f} s {resume_times}")
    print(
        json.dumps(
            {
                "checkpoint_overhead": round(default_overhead, 4),
                "checkpoint_overhead_every_100_steps": round(dense_overhead, 4),
                "resume_vs_cold": round(resumed / cold, 3),
                "cold_start_seconds": round(cold, 2),
                "resume_start_seconds": round(resumed, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
