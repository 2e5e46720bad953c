"""Writing any dataset once as sharded TFRecords, with a schema that lets any reader decode them without code.

A split is a folder holding ``SPLIT-00000-of-0000N.tfrecord`` shards and a ``schema.json``:

.. code-block:: json

    {"format": "tfkit.records/1", "split": "train", "compression": null, "records": 1437,
     "features": {"image": {"dtype": "float32", "shape": [8, 8, 1], "encoding": "raw"},
                  "label": {"dtype": "int64", "shape": [], "encoding": "int64", "num_classes": 10}},
     "shards": [{"file": "train-00000-of-00004.tfrecord", "records": 360, "bytes": 191520}]}

Encodings: ``raw`` (array bytes, not ``FloatList``, which is about 50x slower to write), ``int64`` (an Int64List),
``jpeg`` and ``png`` (images kept encoded; a dimension of -1 varies between images) and ``string`` (bytes as they
are). Shards are sized by a target in bytes. Every shard is written under a temporary name and renamed when
complete, and the schema is written last, so an interrupted write never leaves a folder that looks complete.

Sources (tfkit.sources) with a known length are written shard by shard, each shard from a range of a seeded
permutation (or of the natural order), in parallel processes when the data is large: the output depends only on the
data and the seed. A plain iterator of dicts is written as it comes.

``python -m tfkit.records write|inspect|verify``: see ``main``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import gzip
import json
import math
import multiprocessing
import os
import struct
import sys
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import tensorflow as tf

from tfkit import config as config_lib
from tfkit.cli import run as run_cli
from tfkit.errors import UserError
from tfkit.units import format_bytes

SCHEMA_FILE = "schema.json"
FORMAT = "tfkit.records/1"
ENCODINGS = ("raw", "int64", "jpeg", "png", "string")
IMAGE_ENCODINGS = ("jpeg", "png")
COMPRESSIONS = ("GZIP", "ZLIB")
DEFAULT_SHARD_BYTES = 128 * 2**20
MIN_SHARDS = 10  # shards per split when the data allows: enough for 10 reading hosts, or one host's interleave
# One process writes uncompressed shards at page-cache speed (1.6 GB/s here); spawning writers, each importing
# TensorFlow, costs seconds. They pay off when the work is CPU-bound: compression, or very large data.
PARALLEL_ABOVE_BYTES = {None: 8 * 2**30, "GZIP": 256 * 2**20, "ZLIB": 256 * 2**20}


@dataclasses.dataclass(frozen=True)
class Feature:
    """One feature of a record.

    Attributes:
        dtype: A numpy dtype name of the decoded value, e.g. ``float32``, ``int64``, ``uint8``; ``string`` for bytes.
        shape: The shape of one example's decoded value; ``()`` for a scalar; -1 where images vary.
        encoding: One of ``ENCODINGS``.
        num_classes: For labels, how many classes there are; None otherwise.
        classes: For labels, the class names in index order, when known.
    """

    dtype: str
    shape: tuple[int, ...]
    encoding: str = "raw"
    num_classes: int | None = None
    classes: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        """Returns the schema entry for this feature."""
        entry: dict[str, Any] = {"dtype": self.dtype, "shape": list(self.shape), "encoding": self.encoding}
        if self.num_classes is not None:
            entry["num_classes"] = self.num_classes
        if self.classes is not None:
            entry["classes"] = list(self.classes)
        return entry

    @property
    def example_bytes(self) -> int:
        """Bytes of one decoded value (0 when its size varies)."""
        if self.dtype == "string" or any(size < 0 for size in self.shape):
            return 0
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


@dataclasses.dataclass(frozen=True)
class Schema:
    """A split's schema: its features, shards and record counts.

    ``skipped`` lists records a reader with ``data.skip_corrupt`` leaves out (see tfkit.data).
    """

    split: str
    features: dict[str, Feature]
    shards: tuple[dict[str, Any], ...]
    records: int
    compression: str | None = None
    skipped: tuple[dict[str, Any], ...] = ()

    def files(self, folder: str | os.PathLike[str]) -> list[str]:
        """Returns the shard paths, in order, under ``folder`` (a shard's own absolute path is kept)."""
        return [os.path.join(os.fspath(folder), shard["file"]) for shard in self.shards]

    @property
    def bytes(self) -> int:
        """Bytes of all shards on disk."""
        return sum(int(shard.get("bytes", 0)) for shard in self.shards)


def shard_name(split: str, index: int, count: int) -> str:
    """Returns ``SPLIT-00000-of-00016.tfrecord``-style names."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


# --- encoding -------------------------------------------------------------------------------------------------------


def encode(example: Mapping[str, Any], features: Mapping[str, Feature]) -> bytes:
    """Serialises one example as a ``tf.train.Example``, byte for byte what protobuf's deterministic output is.

    The protobuf wire format is written directly: a Python ``tf.train.Example`` costs more per record than the
    data's own copy, and its map order depends on the process's hash seed unless asked to be deterministic. The
    array's bytes are copied once, into the result.

    Raises:
        UserError: A feature is missing, extra, or of the wrong shape.
    """
    if set(example) != set(features):
        raise UserError(
            f"example has features {sorted(example)}; expected exactly {sorted(features)} as in the schema."
        )
    pieces: list[Any] = []
    entries_length = 0
    for name in sorted(features):  # map entries in key order, as deterministic serialisation has them
        spec = features[name]
        value = example[name]
        if spec.encoding == "int64":
            array = np.asarray(value, dtype=spec.dtype)
            _check_shape(name, array, spec)
            packed = b"".join(_varint(int(item) & 0xFFFFFFFFFFFFFFFF) for item in array.reshape(-1).tolist())
            inner = [b"\x0a", _varint(len(packed)), packed] if packed else []  # Int64List.value, packed
            kind = b"\x1a"  # Feature.int64_list
        else:
            if spec.encoding == "raw":
                array = np.asarray(value, dtype=spec.dtype)
                _check_shape(name, array, spec)
                simple = array.size and array.ndim and array.flags.c_contiguous  # a view can be cast to bytes
                data: Any = array.data.cast("B") if simple else array.tobytes()
            else:
                data = value if isinstance(value, (bytes, bytearray, memoryview)) else bytes(np.asarray(value).item())
            inner = [b"\x0a", _varint(len(data)), data]  # BytesList.value
            kind = b"\x0a"  # Feature.bytes_list
        inner_length = sum(len(piece) for piece in inner)
        feature = [kind, _varint(inner_length), *inner]
        feature_length = sum(len(piece) for piece in feature)
        key = name.encode()
        entry = [b"\x0a", _varint(len(key)), key, b"\x12", _varint(feature_length), *feature]  # key, value
        entry_length = sum(len(piece) for piece in entry)
        pieces += [b"\x0a", _varint(entry_length), *entry]  # Features.feature
        entries_length += 1 + len(_varint(entry_length)) + entry_length
    return b"".join([b"\x0a", _varint(entries_length), *pieces])  # Example.features


def _check_shape(name: str, array: np.ndarray, spec: Feature) -> None:
    if array.shape != tuple(spec.shape):
        raise UserError(f"feature '{name}' has shape {array.shape}; expected {tuple(spec.shape)} as in the schema.")


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class ShardWriter:
    """Writes TFRecord framing (length, masked CRC32C, data, masked CRC32C), optionally compressed, to one file.

    Plain file writes with a C CRC: no TensorFlow op per record. Local paths are written directly, others
    (``gs://``) through ``tf.io.gfile``.
    """

    def __init__(self, path: str, compression: str | None = None) -> None:
        remote = "://" in path
        self.handle: Any = tf.io.gfile.GFile(path, "wb") if remote else open(path, "wb", buffering=1 << 20)  # noqa: SIM115
        self.compressor = None
        if compression:
            self.compressor = zlib.compressobj(6, zlib.DEFLATED, 31 if compression == "GZIP" else 15)

    def write(self, record: bytes) -> None:
        """Appends one record."""
        header = struct.pack("<Q", len(record))
        frame = (header, struct.pack("<I", _masked_crc(header)), record, struct.pack("<I", _masked_crc(record)))
        if self.compressor is None:
            for piece in frame:
                self.handle.write(piece)
        else:
            for piece in frame:
                self.handle.write(self.compressor.compress(piece))

    def close(self) -> None:
        """Flushes and closes the file."""
        if self.compressor is not None:
            self.handle.write(self.compressor.flush())
            self.compressor = None
        self.handle.close()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _normal_compression(compression: str | None) -> str | None:
    if compression is None or str(compression).lower() in ("", "none"):
        return None
    upper = str(compression).upper()
    if upper not in COMPRESSIONS:
        raise UserError(f"compression {compression!r} is not known; expected gzip, zlib or none.")
    return upper


# --- writing --------------------------------------------------------------------------------------------------------


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
    compression = _normal_compression(compression)
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
    try:
        for index, example in enumerate(examples):
            record = encode(example, features)
            target = index % num_shards if num_shards else len(writers) - 1
            if not num_shards and written >= shard_bytes:
                writers[-1].close()
                open_shard()
                target, written = len(writers) - 1, 0
            writers[target].write(record)
            counts[target] += 1
            written += len(record)
    except BaseException:
        for writer, path in zip(writers, paths, strict=True):
            writer.close()
            path.unlink(missing_ok=True)
        raise
    for writer in writers:
        writer.close()
    return _finish(out, split=split, features=features, temporary=paths, counts=counts, compression=compression)


def write(
    source: Any,
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
    """Writes a source with a known length (see tfkit.sources) as one split.

    Args:
        source: A ``tfkit.sources`` source: ``len()``, ``features`` and ``read(indices)``.
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
    compression = _normal_compression(compression)
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
                counts = list(pool.map(_write_shard, jobs))
        else:
            counts = [_write_shard(job) for job in jobs]
    except BaseException:
        for job in jobs:
            Path(job[2]).unlink(missing_ok=True)
        raise
    return _finish(
        out,
        split=split,
        features=source.features,
        temporary=[Path(job[2]) for job in jobs],
        counts=counts,
        compression=compression,
    )


def _write_shard(job: tuple[Any, np.ndarray, str, str | None]) -> int:
    source, order, path, compression = job
    features = source.features
    # Read in index order (sequential for files such as HDF5), write in the shard's own (maybe shuffled) order.
    ascending = np.sort(order)
    examples = dict(zip(ascending.tolist(), source.read(ascending), strict=True))
    with ShardWriter(path, compression) as writer:
        for index in order.tolist():
            writer.write(encode(examples.pop(index), features))
    return len(order)


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
    counts: list[int],
    compression: str | None,
) -> Schema:
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
        shards.append({"file": name, "records": count, "bytes": (out / name).stat().st_size})
    schema = Schema(
        split=split, features=dict(features), shards=tuple(shards), records=sum(counts), compression=compression
    )
    _write_schema(schema, out)
    return schema


# --- reading the schema ---------------------------------------------------------------------------------------------


def read_schema(folder: str | os.PathLike[str]) -> Schema:
    """Reads a split's schema, locally or on ``gs://``.

    Raises:
        UserError: The folder or its schema is missing or malformed.
    """
    folder = os.fspath(folder)
    path = os.path.join(folder, SCHEMA_FILE)
    if not tf.io.gfile.exists(path):
        if not tf.io.gfile.exists(folder):
            raise UserError(f"data folder '{folder}' does not exist; expected a folder of TFRecords. Check the path.")
        raise UserError(
            f"data folder '{folder}' has no {SCHEMA_FILE}; expected one written by tfkit.records (an interrupted "
            "write leaves none). Write the data again: python -m tfkit.records write SOURCE --out FOLDER."
        )
    try:
        raw = json.loads(tf.io.gfile.GFile(path).read())
        features = {
            name: Feature(
                dtype=entry["dtype"],
                shape=tuple(entry["shape"]),
                encoding=entry["encoding"],
                num_classes=entry.get("num_classes"),
                classes=tuple(entry["classes"]) if entry.get("classes") else None,
            )
            for name, entry in raw["features"].items()
        }
        schema = Schema(
            split=raw["split"],
            features=features,
            shards=tuple(raw["shards"]),
            records=int(raw["records"]),
            compression=raw.get("compression"),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"schema '{path}' is malformed ({error}); expected a tfkit.records schema.") from None
    for name, feature in schema.features.items():
        if feature.encoding not in ENCODINGS:
            raise UserError(
                f"schema '{path}': feature '{name}' has encoding '{feature.encoding}'; expected one of {ENCODINGS}."
            )
    return schema


def _write_schema(schema: Schema, out: Path) -> None:
    body = {
        "format": FORMAT,
        "split": schema.split,
        "compression": schema.compression,
        "records": schema.records,
        "features": {name: feature.to_json() for name, feature in schema.features.items()},
        "shards": list(schema.shards),
    }
    temporary = out / f".{SCHEMA_FILE}.tmp"
    temporary.write_text(json.dumps(body, indent=2) + "\n")
    os.replace(temporary, out / SCHEMA_FILE)


# --- verifying ------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Problem:
    """A corrupt or truncated record: the file, the record's index in it, its byte offset, and what is wrong."""

    file: str
    record: int
    offset: int
    what: str

    def describe(self) -> str:
        """``train-00003-of-00008.tfrecord: record 17 (byte 5168): data CRC mismatch``."""
        return f"{self.file}: record {self.record} (byte {self.offset}): {self.what}"


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def scan(path: str, compression: str | None = None) -> tuple[int, list[Problem], list[tuple[int, int]]]:
    """Reads every record of one shard and checks its framing, lengths and CRCs.

    A record whose data CRC fails is skipped and the scan goes on (its length is known). A record whose length is
    unreadable, or that ends early, ends the scan: nothing after it can be located.

    Returns:
        The number of good records, the problems, and the (offset, length) of every good record's data.
    """
    good: list[tuple[int, int]] = []
    problems: list[Problem] = []
    name = os.path.basename(path)
    with open_stream(path, compression) as stream:
        index, offset = 0, 0
        while True:
            try:
                header = stream.read(12)
            except (OSError, EOFError, zlib.error) as error:
                problems.append(Problem(name, index, offset, f"the compressed stream is broken ({error})"))
                break
            if not header:
                break
            if len(header) < 12:
                problems.append(Problem(name, index, offset, "truncated: the file ends inside a record's header"))
                break
            (length,) = struct.unpack("<Q", header[:8])
            (length_crc,) = struct.unpack("<I", header[8:12])
            if _masked_crc(header[:8]) != length_crc:
                problems.append(
                    Problem(name, index, offset, "the length's CRC does not match; nothing after it can be located")
                )
                break
            try:
                body = stream.read(length + 4)
            except (OSError, EOFError, zlib.error) as error:
                problems.append(Problem(name, index, offset, f"the compressed stream is broken ({error})"))
                break
            if len(body) < length + 4:
                problems.append(
                    Problem(name, index, offset, f"truncated: {length + 4} bytes expected, {len(body)} left")
                )
                break
            (data_crc,) = struct.unpack("<I", body[length:])
            if _masked_crc(body[:length]) != data_crc:
                problems.append(Problem(name, index, offset, "the data's CRC does not match (corrupt bytes)"))
            else:
                good.append((offset + 12, length))
            index += 1
            offset += 12 + length + 4
    return len(good), problems, good


def open_stream(path: str, compression: str | None) -> Any:
    """A binary reader of a shard's decompressed bytes (local or ``gs://``); use it as a context manager."""
    raw = tf.io.gfile.GFile(path, "rb")
    if compression == "GZIP":
        return gzip.GzipFile(fileobj=raw)
    if compression == "ZLIB":
        return _ZlibReader(raw)
    return raw


class _ZlibReader:
    """A file-like reader of a zlib stream (TFRecord's ZLIB compression)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.inflater = zlib.decompressobj()
        self.buffer = b""

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.raw.read(1 << 20)
            if not chunk:
                self.buffer += self.inflater.flush()
                break
            self.buffer += self.inflater.decompress(chunk)
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    def __enter__(self) -> _ZlibReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.raw.close()


def verify(folder: str | os.PathLike[str]) -> tuple[Schema, list[Problem], list[int]]:
    """Verifies every shard of a split: framing, CRCs, and the record counts the schema promises.

    Returns:
        The schema, every problem found, and the good records counted per shard.
    """
    schema = read_schema(folder)
    problems: list[Problem] = []
    counts = []
    for shard, path in zip(schema.shards, schema.files(folder), strict=True):
        if not tf.io.gfile.exists(path):
            problems.append(Problem(shard["file"], 0, 0, "missing: the schema lists it, the folder does not have it"))
            counts.append(0)
            continue
        good, found, _ = scan(path, schema.compression)
        problems += found
        counts.append(good)
        if not found and good != shard["records"]:
            problems.append(
                Problem(shard["file"], good, 0, f"holds {good} records; the schema says {shard['records']}")
            )
    return schema, problems, counts


# --- the command line -----------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as every tfkit error
        raise UserError(f"{message}. See python -m tfkit.records {self.prog.split()[-1]} --help.")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m tfkit.records", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    write_cmd = commands.add_parser(
        "write",
        help="convert a dataset to sharded TFRecords",
        description=(
            "SOURCE: .npy files (one feature each, named by the file), an .npz, an HDF5 file (.h5/.hdf5), a folder "
            "of images in class subfolders, or a prepared tensorflow-datasets folder (the one with "
            "dataset_info.json)."
        ),
    )
    write_cmd.add_argument("source", nargs="+", help="the data to convert")
    write_cmd.add_argument("--out", required=True, help="the output folder")
    write_cmd.add_argument("--split", default="train", help="split name of the shards (default train)")
    write_cmd.add_argument(
        "--eval_fraction",
        type=float,
        default=0.0,
        help="also write this share of the examples as OUT/eval (the rest to OUT/train)",
    )
    write_cmd.add_argument("--shard_size", default="128MB", help="target shard size (default 128MB)")
    write_cmd.add_argument("--compression", default="none", choices=["none", "gzip", "zlib"])
    write_cmd.add_argument("--shuffle_seed", type=int, default=None, help="shuffle at write time with this seed")
    write_cmd.add_argument("--workers", type=int, default=None, help="writer processes (default: by data size)")
    write_cmd.add_argument("--features", default=None, help="HDF5/npz: comma-separated names to keep (default all)")
    write_cmd.add_argument("--label", default=None, help="the label feature, to record its number of classes")
    write_cmd.add_argument("--tfds_split", default="train", help="tensorflow-datasets: which split to read")
    inspect_cmd = commands.add_parser("inspect", help="print a split's schema, counts, sizes and one sample")
    inspect_cmd.add_argument("folder")
    verify_cmd = commands.add_parser("verify", help="read every record; name each corrupt or truncated one")
    verify_cmd.add_argument("folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tfkit.records write|inspect|verify``; returns the exit code (verify: 1 on corruption)."""
    from tfkit import sources  # sources imports this module

    args = _parser().parse_args(list(argv if argv is not None else sys.argv[1:]))
    if args.command == "inspect":
        print(_inspect(args.folder))
        return 0
    if args.command == "verify":
        schema, problems, counts = verify(args.folder)
        for problem in problems:
            print(f"corrupt: {problem.describe()}")
        state = f"{len(problems)} problem(s)" if problems else "clean"
        print(
            f"{args.folder}: {sum(counts)} good records of {schema.records} in {len(schema.shards)} shard(s); {state}"
        )
        return 1 if problems else 0
    source = sources.open_source(
        args.source,
        features=args.features.split(",") if args.features else None,
        label=args.label,
        tfds_split=args.tfds_split,
    )
    shard_bytes = config_lib.size_limit(args.shard_size, budget=1, key="--shard_size")
    if not 0 <= args.eval_fraction < 1:
        raise UserError(f"--eval_fraction received {args.eval_fraction}; expected a share in [0, 1), e.g. 0.1.")
    options = {
        "shard_bytes": shard_bytes,
        "compression": args.compression,
        "shuffle_seed": args.shuffle_seed,
        "workers": args.workers,
    }
    if args.eval_fraction:
        order = np.random.default_rng(args.shuffle_seed or 0).permutation(len(source))
        held_out = max(1, round(len(order) * args.eval_fraction))
        for split, part in (("eval", np.sort(order[:held_out])), ("train", np.sort(order[held_out:]))):
            schema = write(source, Path(args.out) / split, split=split, indices=part, **options)
            print(_written(str(Path(args.out) / split), schema))
        return 0
    schema = write(source, args.out, split=args.split, **options)
    print(_written(args.out, schema))
    return 0


def _written(folder: str, schema: Schema) -> str:
    return (
        f"wrote {schema.records} records in {len(schema.shards)} shard(s), {format_bytes(schema.bytes)}, to {folder} "
        f"(features: {', '.join(schema.features)})"
    )


def _inspect(folder: str) -> str:
    from tfkit import data

    schema = read_schema(folder)
    lines = [
        f"{folder}: split {schema.split}, {schema.records} records in {len(schema.shards)} shard(s), "
        f"{format_bytes(schema.bytes)}, compression {schema.compression or 'none'}"
    ]
    for name, feature in schema.features.items():
        extra = f", {feature.num_classes} classes" if feature.num_classes else ""
        lines.append(f"  {name}: {feature.dtype} {list(feature.shape)} ({feature.encoding}{extra})")
    sizes = [shard["records"] for shard in schema.shards]
    lines.append(f"  records per shard: {min(sizes)} to {max(sizes)}")
    sample = data.first_example(folder, schema)
    for name, value in sample.items():
        text = np.array2string(value, threshold=8, edgeitems=2) if value.dtype != object else repr(value.item())[:80]
        lines.append(f"  sample {name}: {text.replace(chr(10), ' ')}")
    return "\n".join(lines)


if __name__ == "__main__":
    run_cli(main)
