"""Which records a split holds: its schema from a folder or a glob of shards, checked against the config.

With ``data.skip_corrupt``, every shard is scanned once at start; a shard with bad records is read from a repaired
copy holding only its good ones, and the bad ones are counted and reported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile

import tensorflow as tf

from tfkit import records
from tfkit.config import DataConfig
from tfkit.data.checks import check_shards, check_split
from tfkit.errors import UserError
from tfkit.records import IMAGE_ENCODINGS, Schema, Shard, read_schema


def check_features(schema: Schema, config: DataConfig, *, folder: str) -> None:
    """Checks that the configured feature and label exist in the schema.

    Raises:
        UserError: Naming the missing key and the features that exist.
    """
    for key, name in (("data.features", config.features), ("data.label", config.label)):
        if name not in schema.features:
            raise UserError(
                f"config key '{key}': received '{name}', which is not a feature of '{folder}'; expected one of "
                f"{', '.join(sorted(schema.features))}."
            )


def load_schema(source: str, config: DataConfig, *, num_classes: int | None = None) -> Schema:
    """Reads a split's schema (a folder, or a glob of shards with ``data.schema``) and checks it against the config.

    With ``data.image_size``, encoded images get that size in the returned schema. With ``data.skip_corrupt``,
    every shard is scanned, and shards with bad records are replaced by repaired copies (see the module's doc).
    The schema is then checked against the files and their first records (tfkit.data.checks).

    Args:
        source: The split's folder, or a glob of its shards.
        config: The ``data`` section.
        num_classes: The model's classes, when labels are class numbers; None takes the schema's.

    Raises:
        UserError: The folder, schema or files are missing, the glob matches nothing, a feature does not exist, or
            the records do not match the schema (see tfkit.data.checks).
    """
    schema = _glob_schema(source, config) if _is_glob(source) else read_schema(source)
    check_features(schema, config, folder=source)
    if config.image_size:
        features = dict(schema.features)
        for name, feature in features.items():
            if feature.encoding in IMAGE_ENCODINGS:
                features[name] = dataclasses.replace(feature, shape=(*config.image_size, feature.shape[-1]))
        schema = dataclasses.replace(schema, features=features)
    for name in (config.features, config.label):
        feature = schema.features[name]
        if any(size < 0 for size in feature.shape):
            raise UserError(
                f"feature '{name}' of '{source}' holds images of varying sizes ({list(feature.shape)}); expected "
                "one size. Set data.image_size: [height, width] to resize them."
            )
    check_shards(source, schema)
    if config.skip_corrupt:
        schema = _skip_corrupt(source, schema)
    check_split(source, schema, config, num_classes=num_classes)
    return schema


def _is_glob(source: str) -> bool:
    return any(char in source for char in "*?[")


def _glob_schema(pattern: str, config: DataConfig) -> Schema:
    if "://" not in pattern:
        pattern = os.path.abspath(pattern)  # shard paths below must be absolute (see the end)
    folder = config.schema or os.path.dirname(pattern)
    if folder.endswith(records.SCHEMA_FILE):
        folder = os.path.dirname(folder)
    if "://" not in folder:
        folder = os.path.abspath(folder)
    schema = read_schema(folder)
    matched = set(tf.io.gfile.glob(pattern))
    if not matched:
        raise UserError(f"the glob '{pattern}' matches no files; expected TFRecord shards. Check the pattern.")
    known = {os.path.join(folder, shard.file): shard for shard in schema.shards}
    unknown = sorted(path for path in matched if path not in known)
    if unknown:
        raise UserError(
            f"'{unknown[0]}' matches the glob '{pattern}' but is not a shard of the schema in '{folder}'; expected "
            "only that schema's shards. Narrow the glob or set data.schema."
        )
    # Absolute paths: Schema.files joins them to the glob unchanged, so every reader treats both forms alike.
    shards = tuple(dataclasses.replace(shard, file=path) for path, shard in known.items() if path in matched)
    return dataclasses.replace(schema, shards=shards, records=sum(shard.records for shard in shards))


def _skip_corrupt(source: str, schema: Schema) -> Schema:
    shards: list[Shard] = []
    skipped = []
    for shard, path in zip(schema.shards, schema.files(source), strict=True):
        good, problems, spans = records.scan(path, schema.compression)
        if not problems:
            shards.append(shard)
            continue
        # Every record after a broken length is unreachable: count them as skipped too.
        lost = shard.records - good
        skipped.append({"file": path, "records": lost, "problems": [problem.describe() for problem in problems]})
        shards.append(Shard(file=_repaired_copy(path, schema.compression, spans), records=good))
    return dataclasses.replace(
        schema, shards=tuple(shards), records=sum(shard.records for shard in shards), skipped=tuple(skipped)
    )


def _repaired_copy(path: str, compression: str | None, spans: list[tuple[int, int]]) -> str:
    """Writes a shard's good records to a cached copy (keyed by the shard's path, size and time) and returns it."""
    stat = tf.io.gfile.stat(path)
    key = hashlib.sha1(f"{path}|{stat.length}|{stat.mtime_nsec}".encode()).hexdigest()[:16]
    folder = os.path.join(tempfile.gettempdir(), "tfkit-repaired")
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, f"{key}-{os.path.basename(path)}")
    if os.path.exists(target):
        return target
    temporary = f"{target}.{os.getpid()}.tmp"
    with records.open_stream(path, compression) as stream, records.ShardWriter(temporary, compression) as writer:
        position = 0
        for offset, length in spans:
            stream.read(offset - position)  # streams: skip forward to the record's data
            writer.write(stream.read(length))
            position = offset + length
    os.replace(temporary, target)
    return target
