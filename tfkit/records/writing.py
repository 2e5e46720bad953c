"""Writing a split: shards sized by bytes, each written under a temporary name and renamed when complete.

The schema is written last, so an interrupted write never leaves a folder that looks complete. Sources
(tfkit.records.sources) with a known length are written shard by shard, each shard from a range of a seeded
permutation (or of the natural order), in parallel processes when the data is large: the output depends only on the
data and the seed. A plain iterator of dicts is written as it comes (``write_split``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import multiprocessing
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfkit.errors import UserError
from tfkit.records.example import encode
from tfkit.records.framing import ShardWriter, normal_compression
from tfkit.records.schema import SCHEMA_FILE, Feature, NonFinite, Schema, Shard, shard_name
from tfkit.records.schema_file import write_schema
from tfkit.records.sources.source import Source
from tfkit.records.verification import count_nonfinite

DEFAULT_SHARD_BYTES = 128 * 2**20
MIN_SHARDS = 10  # shards per split when the data allows: enough for 10 reading hosts, or one host's interleave
# One process writes uncompressed shards at page-cache speed (1.6 GB/s here); more writer processes pay off only when
# the work is CPU-bound: compression, or very large data.
PARALLEL_ABOVE_BYTES = {None: 8 * 2**30, "GZIP": 256 * 2**20, "ZLIB": 256 * 2**20}


def write_split(
    examples: Iterable[Mapping[str, Any]],
    out_dir: str | os.PathLike[str],
    *,
    split: str,
    features: Mapping[str, Feature],
    num_shards: int | None = None,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    compression: str | None = None,
) -> Schema:
    """Writes a Python iterator of dicts as it comes (the API-only source).

    With ``num_shards``, example ``i`` goes to shard ``i % num_shards``, so the shards stay balanced without knowing
    the count up front. Without it, a shard is closed once it holds ``shard_bytes``.

    Args:
        examples: Mappings from feature name to a value of that feature's dtype and shape.
        out_dir: The split's folder; created if missing.
        split: The split name used in the shard names.
        features: The schema of each example.
        num_shards: How many shard files to write, or None to size them by bytes.
        shard_bytes: The target size of a shard when ``num_shards`` is None.
        compression: None, ``GZIP`` or ``ZLIB``.

    Returns:
        The schema written to ``out_dir/schema.json``.

    Raises:
        UserError: An example does not match the schema, or there are no examples.
    """
    compression = normal_compression(compression)
    out = _prepare(out_dir, split)
    paths: list[Path] = []
    counts: list[int] = []
    writers: list[ShardWriter] = []

    def open_shard() -> None:
        paths.append(out / f".{split}-{len(paths):05d}.tmp")
        counts.append(0)
        writers.append(ShardWriter(str(paths[-1]), compression))

    for _ in range(num_shards or 1):
        open_shard()
    written = 0
    tallies: list[_Tally] = [_Tally() for _ in writers]
    try:
        for index, example in enumerate(examples):
            record = encode(example, features)
            target = index % num_shards if num_shards else len(writers) - 1
            if not num_shards and written >= shard_bytes:
                writers[-1].close()
                open_shard()
                tallies.append(_Tally())
                target, written = len(writers) - 1, 0
            tallies[target].add(counts[target], count_nonfinite(example, features))
            writers[target].write(record)
            counts[target] += 1
            tallies[target].records += 1
            written += len(record)
    except BaseException:
        for writer, path in zip(writers, paths, strict=True):
            writer.close()
            path.unlink(missing_ok=True)
        raise
    for writer in writers:
        writer.close()
    return _finish(out, split=split, features=features, temporary=paths, tallies=tallies, compression=compression)


def write(
    source: Source,
    out_dir: str | os.PathLike[str],
    *,
    split: str = "train",
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    min_shards: int = MIN_SHARDS,
    compression: str | None = None,
    shuffle_seed: int | None = None,
    workers: int | None = 1,
    indices: Sequence[int] | np.ndarray | None = None,
) -> Schema:
    """Writes a source with a known length (see tfkit.records.sources) as one split.

    Args:
        source: A ``tfkit.records.sources.Source``: ``len()``, ``features`` and ``read(indices)``.
        out_dir: The split's folder; created if missing.
        split: The split name used in the shard names.
        shard_bytes: The target size of a shard (before compression).
        min_shards: At least this many shards when the data has that many examples.
        compression: None, ``gzip`` or ``zlib``.
        shuffle_seed: Shuffle the examples with this seed at write time; None keeps their order.
        workers: Processes to write with; None picks several when that pays (compressed data over 256 MB, or any
            over 8 GB; the command line's default).
            They are spawned, so a script that asks for more than 1 needs the ``if __name__ == "__main__":`` guard.
        indices: Write only these examples of the source (an eval share, say), in this order before shuffling.

    Returns:
        The schema written to ``out_dir/schema.json``.

    Raises:
        UserError: The source is empty.
    """
    compression = normal_compression(compression)
    order = np.arange(len(source)) if indices is None else np.asarray(indices, dtype=np.int64)
    if len(order) == 0:
        raise UserError(f"the source {source.describe()} has no examples for split '{split}'; expected at least one.")
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(order)
    total = len(order) * max(source.example_bytes, 1)
    count = max(1, min(len(order), max(min_shards, math.ceil(total / shard_bytes))))
    bounds = [round(index * len(order) / count) for index in range(count + 1)]
    out = _prepare(out_dir, split)
    jobs = [
        (source, order[bounds[index] : bounds[index + 1]], str(out / f".{split}-{index:05d}.tmp"), compression)
        for index in range(count)
    ]
    if workers is None:
        workers = min(os.cpu_count() or 1, count) if total > PARALLEL_ABOVE_BYTES[compression] else 1
    try:
        if workers > 1 and source.parallel:
            # spawn, never fork: a forked TensorFlow runtime can deadlock. Each child opens the source itself.
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                tallies = list(pool.map(_write_shard, jobs))
        else:
            tallies = [_write_shard(job) for job in jobs]
    except BaseException:
        for job in jobs:
            Path(job[2]).unlink(missing_ok=True)
        raise
    return _finish(
        out,
        split=split,
        features=source.features,
        temporary=[Path(job[2]) for job in jobs],
        tallies=tallies,
        compression=compression,
    )


def _write_shard(job: tuple[Source, np.ndarray, str, str | None]) -> _Tally:
    source, order, path, compression = job
    features = source.features
    # Read in index order (sequential for files such as HDF5), write in the shard's own (maybe shuffled) order.
    ascending = np.sort(order)
    examples = dict(zip(ascending.tolist(), source.read(ascending), strict=True))
    tally = _Tally()
    with ShardWriter(path, compression) as writer:
        for position, index in enumerate(order.tolist()):
            example = examples.pop(index)
            tally.add(position, count_nonfinite(example, features))
            writer.write(encode(example, features))
    tally.records = len(order)
    return tally


def _prepare(out_dir: str | os.PathLike[str], split: str) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / SCHEMA_FILE).unlink(missing_ok=True)  # the folder is incomplete until the schema is back
    for leftover in out.glob(f".{split}-*.tmp"):
        leftover.unlink()  # an interrupted earlier write's
    return out


def _finish(
    out: Path,
    *,
    split: str,
    features: Mapping[str, Feature],
    temporary: list[Path],
    tallies: list[_Tally],
    compression: str | None,
) -> Schema:
    counts = [tally.records for tally in tallies]
    if sum(counts) == 0:
        for path in temporary:
            path.unlink(missing_ok=True)
        raise UserError(f"no examples were given for split '{split}'; expected at least one. Check the source.")
    names = [shard_name(split, index, len(temporary)) for index in range(len(temporary))]
    for stale in out.glob(f"{split}-*-of-*.tfrecord"):
        if stale.name not in names:
            stale.unlink()  # a shard of an earlier write with another shard count
    shards = []
    for name, path, count in zip(names, temporary, counts, strict=True):
        os.replace(path, out / name)
        shards.append(Shard(file=name, records=count, bytes=(out / name).stat().st_size))
    schema = Schema(
        split=split,
        features=_with_nonfinite(features, tallies),
        shards=tuple(shards),
        records=sum(counts),
        compression=compression,
    )
    write_schema(schema, out)
    return schema


class _Tally:
    """What one shard holds: its records, and per float feature the NaN/inf values and the first record with one."""

    def __init__(self) -> None:
        self.records = 0
        self.nonfinite: dict[str, int] = {}
        self.first: dict[str, int] = {}

    def add(self, position: int, counts: Mapping[str, int]) -> None:
        """Counts the non-finite values of the example at ``position`` in the shard."""
        for name, count in counts.items():
            self.nonfinite[name] = self.nonfinite.get(name, 0) + count
            self.first[name] = min(self.first.get(name, position), position)


def _with_nonfinite(features: Mapping[str, Feature], tallies: list[_Tally]) -> dict[str, Feature]:
    """The features, each float one with its NaN/inf count and first record (an index in the split's order)."""
    out = dict(features)
    for name, feature in features.items():
        if not feature.is_float:
            continue
        count, first, offset = 0, None, 0
        for tally in tallies:
            count += tally.nonfinite.get(name, 0)
            if first is None and name in tally.first:
                first = offset + tally.first[name]
            offset += tally.records
        out[name] = dataclasses.replace(feature, nonfinite=NonFinite(count=count, first_record=first))
    return out
