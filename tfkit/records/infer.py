"""A schema for TFRecords tfkit did not write (a Kaggle competition's ``.tfrec`` files), inferred from the records.

A sample of records is read with the framing reader and the Example parser of this package (no TensorFlow for local
files): each feature's kind (int64, float, bytes), whether it is a scalar, a fixed-length list or of varying length,
and whether its bytes are JPEG or PNG images, with their sizes from the headers (-1 where sizes vary). Compression is
found from the first bytes of each file. Records are counted per shard by reading every record, which also reads the
label of each, so the number of classes and any label out of range are known; or, when asked to skip the count,
taken from Kaggle-style names (``00-192x192-798.tfrec`` holds 798 records).
"""

from __future__ import annotations

import dataclasses
import glob
import io
import os
import re
import struct
import zlib
from collections.abc import Sequence
from typing import Any

from PIL import Image

from tfkit.errors import UserError
from tfkit.records import files
from tfkit.records.example import parse
from tfkit.records.framing import masked_crc, read_records
from tfkit.records.schema import Feature, Schema, Shard

SAMPLE_RECORDS = 64
LABEL_NAMES = ("label", "labels", "class", "target", "y")  # a scalar int64 feature of one of these names is a label
_COUNT_IN_NAME = re.compile(r"-(\d+)(\.[A-Za-z0-9]+)?$")  # 00-192x192-798.tfrec
_NOT_RECORDS = (".json", ".csv", ".txt", ".md", ".yaml", ".yml", ".py", ".tmp", ".npy", ".npz", ".jpg", ".png")
_IMAGE_MAGIC = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png"}


def expand(locations: str | Sequence[str]) -> list[str]:
    """The record files of a folder, a glob, or a list of either, sorted and each once.

    A folder gives every file in it except hidden ones and ones named like something else (``.json``, ``.csv``,
    images, ...). Remote locations (``gs://``) are listed through TensorFlow's file systems.

    Raises:
        UserError: A location that does not exist, or one that gives no files.
    """
    found: list[str] = []
    for location in [locations] if isinstance(locations, str) else list(locations):
        if any(char in location for char in "*?["):
            matched = sorted(_gfile().glob(location) if files.is_remote(location) else glob.glob(location))
            matched = [path for path in matched if not _is_folder(path)]
            if not matched:
                raise UserError(f"the glob '{location}' matches no files; expected TFRecord shards. Check the pattern.")
            found += matched
        elif _is_folder(location):
            names = _gfile().listdir(location) if files.is_remote(location) else os.listdir(location)
            matched = sorted(
                os.path.join(location, name.rstrip("/"))
                for name in names
                if not name.startswith(".") and not name.lower().endswith(_NOT_RECORDS)
            )
            matched = [path for path in matched if not _is_folder(path)]
            if not matched:
                raise UserError(f"data folder '{location}' holds no record files; expected TFRecord files in it.")
            found += matched
        elif files.exists(location):
            found.append(location)
        else:
            raise UserError(f"data '{location}' does not exist; expected a folder, a glob or a file. Check the path.")
    return sorted(dict.fromkeys(found))


def detect_compression(path: str) -> str | None:
    """``GZIP``, ``ZLIB`` or None for one record file, from its first bytes (gzip's magic, a valid length CRC).

    Raises:
        UserError: The file is not a TFRecord file in any of these forms.
    """
    with files.open_file(path, "rb") as handle:
        head = handle.read(64)
    if not head or (len(head) >= 12 and masked_crc(head[:8]) == struct.unpack("<I", head[8:12])[0]):
        return None
    if head[:2] == b"\x1f\x8b":
        return "GZIP"
    try:
        inflated = zlib.decompressobj().decompress(head)
    except zlib.error:
        inflated = b""
    if len(inflated) >= 12 and masked_crc(inflated[:8]) == struct.unpack("<I", inflated[8:12])[0]:
        return "ZLIB"
    raise UserError(
        f"'{path}' is not a TFRecord file (plain, gzip or zlib); expected only record files. Narrow the glob or "
        "move the file out of the folder."
    )


def count_from_name(path: str) -> int | None:
    """The record count a Kaggle-style name carries (``00-192x192-798.tfrec``: 798), or None."""
    name = os.path.basename(path)
    match = _COUNT_IN_NAME.search(name)
    # train-00000-of-00004.tfrecord ends in a shard count, not a record count
    return int(match.group(1)) if match and "-of-" not in name else None


@dataclasses.dataclass
class _Kinds:
    """What the sampled records showed of one feature."""

    kinds: set[str] = dataclasses.field(default_factory=set)
    lengths: set[int] = dataclasses.field(default_factory=set)
    images: set[str] = dataclasses.field(default_factory=set)
    shapes: set[tuple[int, int, int]] = dataclasses.field(default_factory=set)
    present: int = 0


def infer_schema(
    paths: Sequence[str],
    *,
    split: str = "train",
    label: str | None = None,
    count: bool = True,
    num_classes: int | None = None,
    sample: int = SAMPLE_RECORDS,
    labels: bool = True,
) -> Schema:
    """Infers the schema of record files tfkit did not write; shard paths are kept as given.

    Args:
        paths: The record files (see ``expand``).
        split: The split's name in the schema.
        label: The label feature; None picks a scalar int64 feature named like one (``LABEL_NAMES``, also as the
            last part of a name such as ``image/class/label``), if any.
        count: Count every shard's records by reading them all (and with them every label). Off, counts come from
            Kaggle-style names (``-798.tfrec``), and the number of classes is left to the config.
        num_classes: The number of classes the config declares; labels are checked against it.
        sample: How many records, from the start of the first files, decide each feature's kind and shape.
        labels: Whether to read the labels (checked, and giving the number of classes). Off for a test split, whose
            labels, where it has any, are placeholders (-1) that predictions never read.

    Raises:
        UserError: A file that is not a TFRecord file, mixed compressions, no records, a count not in a name, or a
            label outside ``[0, num_classes)``, naming the file and the record.
    """
    features, compression = infer_features(paths, sample=sample)
    label = label or _guess_label(features)
    labelled = labels and label in features and features[label].encoding == "int64" and features[label].shape == ()
    shards = []
    highest = -1
    for path in paths:
        if count:
            records = 0
            for records, serialized in enumerate(read_records(path, compression), start=1):
                if labelled:
                    highest = max(highest, _check_label(parse(serialized), str(label), path, records - 1, num_classes))
        else:
            found = count_from_name(path)
            if found is None:
                raise UserError(
                    f"'{path}' carries no record count in its name (like 00-192x192-798.tfrec); expected one when "
                    "counts are not read. Let tfkit count the records (data.count_records: true)."
                )
            records = found
        shards.append(Shard(file=path, records=records, bytes=_size(path)))
    if labelled and label is not None:
        known = num_classes or (highest + 1 if count and highest >= 0 else None)
        features[label] = dataclasses.replace(features[label], num_classes=known)
    return Schema(
        split=split,
        features=features,
        shards=tuple(shards),
        records=sum(shard.records for shard in shards),
        compression=compression,
    )


def infer_features(paths: Sequence[str], *, sample: int = SAMPLE_RECORDS) -> tuple[dict[str, Feature], str | None]:
    """Each feature's kind and shape from the first ``sample`` records, and the files' compression.

    Raises:
        UserError: A file that is not a TFRecord file, mixed compressions, no records, or a feature of mixed kinds.
    """
    if not paths:
        raise UserError("no record files were given; expected at least one TFRecord file.")
    compressions = {path: detect_compression(path) for path in paths}
    if len(set(compressions.values())) > 1:
        kinds = {value or "none": path for path, value in compressions.items()}
        raise UserError(f"the record files mix compressions ({kinds}); expected one. Give each kind separately.")
    compression = compressions[paths[0]]
    seen: dict[str, _Kinds] = {}
    taken = 0
    for path in paths:
        for serialized in read_records(path, compression):
            _observe(parse(serialized), seen)
            taken += 1
            if taken >= sample:
                break
        if taken >= sample:
            break
    if not taken:
        raise UserError(f"the record files ({paths[0]}, ...) hold no records; expected at least one.")
    return {name: _feature(name, kinds, taken) for name, kinds in sorted(seen.items())}, compression


def summary(schema: Schema) -> str:
    """The schema in one line, for the log: records, files, and each feature's kind and shape."""
    described = []
    for name, feature in schema.features.items():
        classes = f", {feature.num_classes} classes" if feature.num_classes else ""
        described.append(f"{name} {feature.encoding} {list(feature.shape)}{classes}")
    compression = f", {schema.compression.lower()}" if schema.compression else ""
    return f"{schema.records} records in {len(schema.shards)} file(s){compression}; " + ", ".join(described)


def _guess_label(features: dict[str, Feature]) -> str | None:
    """A scalar int64 feature named like a label (``class``, ``image/class/label``), or None."""
    for name, feature in features.items():
        if feature.encoding == "int64" and feature.shape == () and name.rsplit("/", 1)[-1] in LABEL_NAMES:
            return name
    return None


def _observe(example: dict[str, Any], seen: dict[str, _Kinds]) -> None:
    for name, values in example.items():
        kinds = seen.setdefault(name, _Kinds())
        kinds.lengths.add(len(values))
        kinds.present += 1
        if not values:
            continue
        kind = "bytes" if isinstance(values[0], bytes) else "float" if isinstance(values[0], float) else "int64"
        kinds.kinds.add(kind)
        data = values[0]
        if isinstance(data, bytes) and len(values) == 1:
            image = next((encoding for magic, encoding in _IMAGE_MAGIC.items() if data.startswith(magic)), "none")
            kinds.images.add(image)
            if image != "none":
                kinds.shapes.add(encoded_image_shape(data, name))


def _feature(name: str, kinds: _Kinds, taken: int) -> Feature:
    if len(kinds.kinds) > 1:
        raise UserError(
            f"feature '{name}' holds {' and '.join(sorted(kinds.kinds))} values in different records; expected one "
            "kind. Leave it out of data.features and data.label."
        )
    kind = next(iter(kinds.kinds), "bytes")
    fixed = len(kinds.lengths) == 1 and kinds.present == taken  # a feature some records lack varies in length
    length = next(iter(kinds.lengths)) if fixed else -1
    shape: tuple[int, ...] = () if length == 1 else (length,)
    if kind == "int64":
        return Feature(dtype="int64", shape=shape, encoding="int64")
    if kind == "float":
        return Feature(dtype="float32", shape=shape, encoding="float")
    if length == 1 and len(kinds.images) == 1 and "none" not in kinds.images:
        heights = {height for height, _, _ in kinds.shapes}
        widths = {width for _, width, _ in kinds.shapes}
        channels = max(channel for _, _, channel in kinds.shapes)
        size = tuple(sizes.pop() if len(sizes) == 1 else -1 for sizes in (heights, widths))
        return Feature(dtype="uint8", shape=(*size, channels), encoding=next(iter(kinds.images)))
    return Feature(dtype="string", shape=shape, encoding="string")


def encoded_image_shape(data: bytes, name: str) -> tuple[int, int, int]:
    """(height, width, channels) of an encoded JPEG or PNG, from its header alone.

    Raises:
        UserError: The bytes are no readable JPEG or PNG, naming the feature.
    """
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG", "PNG")) as image:
            width, height = image.size
            mode = image.mode
    except (OSError, SyntaxError, ValueError) as error:
        raise UserError(f"feature '{name}' holds an unreadable image ({error}); expected JPEG or PNG.") from None
    return height, width, 3 if mode in ("P", "PA") else Image.getmodebands(mode)


def _check_label(example: dict[str, Any], label: str, path: str, record: int, num_classes: int | None) -> int:
    values = example.get(label, [])
    if len(values) != 1:
        raise UserError(
            f"{path}: record {record}: label '{label}' holds {len(values)} values; expected one class index. Fix "
            "the record or choose another data.label."
        )
    value = int(values[0])
    if value < 0 or (num_classes is not None and value >= num_classes):
        bound = num_classes if num_classes is not None else "num_classes"
        raise UserError(
            f"{path}: record {record}: label '{label}' is {value}, outside [0, {bound}); expected a class index. "
            "Fix the record, or set model.num_classes above the largest label."
        )
    return value


def _size(path: str) -> int:
    if files.is_remote(path):
        return int(_gfile().stat(path).length)
    return os.path.getsize(path)


def _is_folder(path: str) -> bool:
    return bool(_gfile().isdir(path)) if files.is_remote(path) else os.path.isdir(path)


def _gfile() -> Any:
    import tensorflow as tf  # only remote paths need TensorFlow (see tfkit.records.files)

    return tf.io.gfile
