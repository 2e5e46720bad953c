"""What the TFRecord pipeline costs against the usual ways of feeding data, and that its memory stays flat.

For two record sizes, digits-shaped (an 8x8x1 float32 image, 256 B) and EEG-window-sized (129x200 float32, about
100 KB), the same arrays are written once as an HDF5 file and as tfkit TFRecords, then read for one epoch by:

- (a) tfkit's reader (``tfkit.data.dataset_fn``: interleave, shuffle, batch-then-parse, decode, prefetch);
- (b) the same arrays in memory through ``from_tensor_slices`` (shuffle, batch, prefetch);
- (c) a per-item h5py random-access generator through ``from_generator``, the usual notebook approach (timed on
  a subset: it is slow);
- (d) a raw sequential read of the shard files, the I/O limit (in MB/s; the files are in the page cache, as they
  are for (a)).

The readers alternate over several rounds and the medians are compared. The writer's MB/s is compared with a raw
``ndarray.tofile`` of the same bytes. Finally a full epoch over 0.5 GB and over 4 GB of EEG windows runs in fresh
processes, and their peak RSS is compared.

The last line is JSON with ``ratio_vs_memory`` (a/b examples/s, small records), ``ratio_vs_h5py`` (a/c examples/s,
small records, where the per-item cost shows; ``ratio_vs_h5py_large`` for large ones, where both read at memory
bandwidth), ``ratio_vs_raw_mb`` (a/d MB/s, large records), ``writer_mb_per_s`` (large records), ``rss_growth``
(peak RSS of an epoch at 4 GB over one at 0.5 GB, minus 1) and ``rss_growth_vs_same_reading`` (over 8 epochs at
0.5 GB, which read as much). The machine is noisy: run it more than once.

    python benchmarks/pipeline.py [--rounds 3] [--skip_rss]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import tensorflow as tf

from tfkit import config as config_lib
from tfkit import data, records

SIZES = {
    # name: (example shape, examples, batch)
    "small": ((8, 8, 1), 200_000, 256),
    "large": ((129, 200), 3_000, 32),
}
H5PY_SUBSET = {"small": 20_000, "large": 1_000}


def make_data(folder: Path, shape: tuple[int, ...], count: int) -> tuple[np.ndarray, np.ndarray, Path]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((count, *shape)).astype(np.float32)
    y = rng.integers(0, 10, count)
    path = folder / "data.h5"
    with h5py.File(path, "w") as handle:
        handle["x"] = x
        handle["y"] = y
    return x, y, path


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def epoch(dataset: tf.data.Dataset) -> int:
    count = 0
    for batch in dataset:
        count += int(batch[1].shape[0])
    return count


def tfkit_reader(folder: Path, schema: records.Schema, batch: int) -> tf.data.Dataset:
    config = config_lib.DataConfig(train=str(folder), features="x", label="y")
    make = data.dataset_fn(str(folder), schema, config, per_replica_batch_size=batch, training=True, seed=0, epoch=0)
    return make(tf.distribute.InputContext())


def memory_reader(x: np.ndarray, y: np.ndarray, batch: int, buffer: int) -> tf.data.Dataset:
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(buffer, seed=0)
    return dataset.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def h5py_reader(path: Path, shape: tuple[int, ...], count: int, batch: int) -> tf.data.Dataset:
    def items():
        with h5py.File(path, "r") as handle:
            x, y = handle["x"], handle["y"]
            for index in np.random.default_rng(0).permutation(count):
                yield x[index], y[index]

    signature = (tf.TensorSpec(shape, tf.float32), tf.TensorSpec((), tf.int64))
    dataset = tf.data.Dataset.from_generator(items, output_signature=signature)
    return dataset.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def raw_read(files: list[str]) -> int:
    total = 0
    for path in files:
        with open(path, "rb") as handle:
            while chunk := handle.read(16 << 20):
                total += len(chunk)
    return total


def compare(name: str, rounds: int, scratch: Path) -> dict[str, float]:
    shape, count, batch = SIZES[name]
    folder = scratch / name
    folder.mkdir()
    x, y, h5 = make_data(folder, shape, count)
    payload = x.nbytes + y.nbytes

    write_seconds, raw_seconds = [], []
    for round_ in range(rounds):
        out = folder / f"records-{round_}"
        source = records.open_source([str(h5)])
        write_seconds.append(timed(lambda: records.write(source, out, workers=None)))  # noqa: B023
        raw = folder / f"raw-{round_}.bin"
        raw_seconds.append(timed(lambda: (x.tofile(raw), y.tofile(raw.with_suffix(".y")))))  # noqa: B023
    schema = records.read_schema(out)
    files = schema.files(out)
    on_disk = sum(Path(path).stat().st_size for path in files)

    times: dict[str, list[float]] = {"a": [], "b": [], "c": [], "d": []}
    buffer = data.shuffle_examples(schema, config_lib.DataConfig(train=str(out), features="x", label="y"))
    subset = min(H5PY_SUBSET[name], count)
    raw_read(files)  # warm the page cache for (a) and (d) alike
    for _ in range(rounds):
        times["a"].append(timed(lambda: epoch(tfkit_reader(out, schema, batch))))
        times["b"].append(timed(lambda: epoch(memory_reader(x, y, batch, buffer))))
        times["c"].append(timed(lambda: epoch(h5py_reader(h5, shape, subset, batch))))
        times["d"].append(timed(lambda: raw_read(files)))
    median = {key: statistics.median(values) for key, values in times.items()}
    examples = (count // batch) * batch
    result = {
        "a_examples_per_s": examples / median["a"],
        "b_examples_per_s": examples / median["b"],
        "c_examples_per_s": (subset // batch) * batch / median["c"],
        "a_mb_per_s": on_disk / median["a"] / 1e6,
        "d_mb_per_s": on_disk / median["d"] / 1e6,
        "writer_mb_per_s": payload / statistics.median(write_seconds) / 1e6,
        "raw_write_mb_per_s": payload / statistics.median(raw_seconds) / 1e6,
    }
    print(
        f"{name:5s} ({np.prod(shape) * 4:,} B/record, {count:,} records, {on_disk / 1e6:.0f} MB): "
        f"(a) tfkit {result['a_examples_per_s']:,.0f} ex/s {result['a_mb_per_s']:,.0f} MB/s | "
        f"(b) memory {result['b_examples_per_s']:,.0f} ex/s | (c) h5py per item {result['c_examples_per_s']:,.0f} "
        f"ex/s | (d) raw read {result['d_mb_per_s']:,.0f} MB/s | writer {result['writer_mb_per_s']:,.0f} MB/s vs "
        f"raw write {result['raw_write_mb_per_s']:,.0f} MB/s",
        flush=True,
    )
    shutil.rmtree(folder)
    return result


# Peak RSS is VmHWM from /proc: getrusage's ru_maxrss would carry over the benchmark's own RSS across fork and exec.
EPOCH_SCRIPT = """
import re, sys, tensorflow as tf
from tfkit import config as config_lib, data, records
folder, epochs = sys.argv[1], int(sys.argv[2])
schema = records.read_schema(folder)
config = config_lib.DataConfig(train=folder, features="x", label="y")
count = 0
for epoch in range(epochs):
    make = data.dataset_fn(folder, schema, config, per_replica_batch_size=32, training=True, seed=0, epoch=epoch)
    count += sum(int(batch[1].shape[0]) for batch in make(tf.distribute.InputContext()))
peak_kib = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
print(count, peak_kib * 1024)
"""


def rss_flatness(scratch: Path) -> tuple[float, float]:
    """Peak RSS of a full epoch over 4 GB of EEG windows against one over 0.5 GB, and against 8 epochs of 0.5 GB.

    Both splits have at least 10 shards, as ``tfkit.records write`` makes them, so both pipelines interleave 8
    files. The 8 epochs read as much as the 4 GB epoch: they tell growth with data from growth with running time
    (tf.data's autotuning and the allocator settle over minutes, whatever the data).
    """
    feature = records.Feature("float32", (129, 200), "raw")
    features = {"x": feature, "y": records.Feature("int64", (), "int64")}
    peaks = {}
    for gigabytes, epochs in ((0.5, 1), (4.0, 1), (0.5, 8)):
        count = int(gigabytes * 1e9 / feature.example_bytes)
        folder = scratch / f"rss-{gigabytes}"
        if not folder.exists():

            def windows(count: int = count):
                rng = np.random.default_rng(0)
                block = rng.standard_normal((256, 129, 200)).astype(np.float32)  # reused: the content does not matter
                for index in range(count):
                    yield {"x": block[index % 256], "y": np.int64(index % 10)}

            shard_bytes = min(records.DEFAULT_SHARD_BYTES, int(gigabytes * 1e9 / records.MIN_SHARDS))
            records.write_split(windows(), folder, split="train", features=features, shard_bytes=shard_bytes)
        script = [sys.executable, "-c", EPOCH_SCRIPT, str(folder), str(epochs)]
        result = subprocess.run(script, capture_output=True, text=True)
        if result.returncode:
            raise SystemExit(result.stderr)
        seen, peak = (int(value) for value in result.stdout.split())
        peaks[gigabytes, epochs] = peak
        print(
            f"rss: {gigabytes} GB x {epochs} epoch(s) ({count:,} windows, {seen:,} read): peak RSS "
            f"{peak / 2**20:,.0f} MiB",
            flush=True,
        )
    for folder in scratch.glob("rss-*"):
        shutil.rmtree(folder)
    return peaks[4.0, 1] / peaks[0.5, 1] - 1, peaks[4.0, 1] / peaks[0.5, 8] - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip_rss", action="store_true", help="skip the 4 GB flatness check")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="tfkit-pipeline-"))
    try:
        small = compare("small", args.rounds, scratch)
        large = compare("large", args.rounds, scratch)
        growth, same_reading = (None, None) if args.skip_rss else rss_flatness(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = {
        "ratio_vs_memory": round(small["a_examples_per_s"] / small["b_examples_per_s"], 3),
        "ratio_vs_h5py": round(small["a_examples_per_s"] / small["c_examples_per_s"], 1),
        "ratio_vs_h5py_large": round(large["a_examples_per_s"] / large["c_examples_per_s"], 1),
        "ratio_vs_raw_mb": round(large["a_mb_per_s"] / large["d_mb_per_s"], 3),
        "writer_mb_per_s": round(large["writer_mb_per_s"], 1),
        "rss_growth": None if growth is None else round(growth, 4),
        "rss_growth_vs_same_reading": None if same_reading is None else round(same_reading, 4),
        "goals": {
            "ratio_vs_memory": ">= 0.8",
            "ratio_vs_h5py": ">= 10",
            "ratio_vs_raw_mb": ">= 0.5",
            "writer_mb_per_s": ">= 300",
            "rss_growth": "<= 0.05",
        },
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
