"""Which records a split holds: its schema (written, declared or inferred), checked against the config.

Data tfkit did not write (a competition's ``.tfrec`` files) needs no schema file: the schema is inferred from the
records and kept in the run's workdir (see ``load_schema``).

With ``data.skip_corrupt``, every shard is scanned once at start; a shard with bad records is read from a repaired
copy holding only its good ones, and the bad ones are counted and reported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf

from tfkit import atomic, records
from tfkit.config import DataConfig
from tfkit.data import presets
from tfkit.data.checks import check_shards, check_split
from tfkit.errors import UserError
from tfkit.records import IMAGE_ENCODINGS, Schema, Shard, conformance, files, infer, read_schema
from tfkit.records.schema_file import read_schema_file
from tfkit.records.sources.csv_images import CSVImageSource


def check_features(schema: Schema, config: DataConfig, *, folder: str, label_required: bool = True) -> None:
    """Checks that the configured feature and label exist in the schema (the label only if ``label_required``).

    Raises:
        UserError: Naming the missing key and the features that exist.
    """
    keys = [("data.features", config.features)] + ([("data.label", config.label)] if label_required else [])
    for key, name in keys:
        if name not in schema.features:
            raise UserError(
                f"config key '{key}': received '{name}', which is not a feature of '{folder}'; expected one of "
                f"{', '.join(sorted(schema.features))}."
            )


def load_schema(
    source: str | Sequence[str],
    config: DataConfig,
    *,
    split: str = "train",
    workdir: str | os.PathLike[str] | None = None,
    num_classes: int | None = None,
    weight_feature: str | None = None,
) -> Schema:
    """Reads or infers a split's schema and checks it, and a sample of the records, against the config.

    ``source`` is a folder written by tfkit.records (with its ``schema.json``), or a folder, glob or list of globs of
    TFRecord files of any name, described by ``data.schema`` or else inferred from the records (see
    tfkit.records.infer), or a CSV with an image folder (``data.images``). An inferred schema is written to
    ``WORKDIR/schema-SPLIT.json`` and read from there again on resume; without a workdir it is inferred each time.

    With ``data.image_size``, encoded images get that size in the returned schema. With ``data.skip_corrupt``,
    every shard is scanned, and shards with bad records are replaced by repaired copies (see the module's doc).
    The schema is then checked against the files and their first records (tfkit.data.checks).

    Args:
        source: The split's folder, or a glob of its shards.
        config: The ``data`` section.
        num_classes: The model's classes, when labels are class numbers; None takes the schema's.

    Args:
        source: ``data.train``, ``data.eval`` or ``data.test``.
        config: The ``data`` section.
        split: ``train``, ``eval`` or ``test``; the label is optional in ``test``.
        workdir: The run's folder, where an inferred schema is kept; None keeps it in memory only.
        num_classes: ``model.num_classes`` when the config gives it: labels read while inferring are checked
            against it; without it, an inferred schema takes the largest training label plus one.
        weight_feature: ``task.weight_feature`` where the split is read with weights (training and its eval): it
            must be a numeric scalar feature whose values are finite and 0 or more. None for none.

    Raises:
        UserError: The folder, schema or files are missing, the glob matches nothing, a feature does not exist, a
            label is out of range, a weight is not a finite number of 0 or more, or a record does not match the
            schema (naming the file, the record and the fix; see tfkit.data.checks).
    """
    where = source if isinstance(source, str) else ", ".join(source)
    if isinstance(source, str) and source.lower().endswith(".csv"):
        schema = csv_split(source, config, split=split, workdir=workdir)
    else:
        schema = _declared_schema(source, config) or _inferred_schema(
            source, config, split=split, workdir=workdir, num_classes=num_classes
        )
    labelled = split != "test" or config.label in schema.features
    check_features(schema, config, folder=where, label_required=labelled)
    if split == "train" and config.augmentations:
        presets.check(schema, config)
    names = [config.features] + ([config.label] if labelled else []) + ([weight_feature] if weight_feature else [])
    check_shards(where, schema)
    if config.skip_corrupt:
        schema = _skip_corrupt(source, schema)
    # After skip_corrupt, both read the repaired copies: the first records' sizes, labels and NaN/inf, then the kinds
    # of the features the run uses in a sample of every shard.
    # A test split's labels, if it has any, are never read: placeholders there (-1, NaN) are not refused.
    check_split(source, schema, config, num_classes=num_classes, weight_feature=weight_feature, labels=split != "test")
    conformance.check_sample(schema, source, names=names)
    if config.image_size:
        features = dict(schema.features)
        for name, feature in features.items():
            if feature.encoding in IMAGE_ENCODINGS:
                features[name] = dataclasses.replace(feature, shape=(*config.image_size, feature.shape[-1]))
        schema = dataclasses.replace(schema, features=features)
    for name in names:
        feature = schema.features[name]
        if any(size < 0 for size in feature.shape):
            fix = (
                "Set data.image_size: [height, width] to resize them."
                if feature.encoding in IMAGE_ENCODINGS
                else "Choose a fixed-length feature."
            )
            raise UserError(
                f"feature '{name}' of '{where}' varies in size ({list(feature.shape)}); expected one size. {fix}"
            )
    return schema


def inferred_schema_path(workdir: str | os.PathLike[str], split: str) -> Path:
    """Where a run keeps the schema it inferred for a split: ``WORKDIR/schema-SPLIT.json``."""
    return Path(workdir) / f"schema-{split}.json"


def csv_split(source: str, config: DataConfig, *, split: str, workdir: str | os.PathLike[str] | None = None) -> Schema:
    """A CSV with an image folder (``data.images``), written once as TFRecords and read from there again.

    The records go to ``WORKDIR/records-SPLIT`` (a temporary folder without a workdir), keyed by the CSV's path, size
    and time, so a resumed run reads them again instead of writing them twice. Shard paths come back absolute.

    Raises:
        UserError: ``data.images`` is not set, or the CSV does not match its images.
    """
    if not config.images:
        raise UserError(
            f"data '{source}' is a CSV; expected data.images to name its image folder, e.g. --set data.images=images/."
        )
    stat = os.stat(source)
    identity = f"{os.path.abspath(source)}|{stat.st_size}|{stat.st_mtime_ns}|{os.path.abspath(config.images)}"
    key = hashlib.sha1(identity.encode()).hexdigest()[:12]  # another image folder is other records
    base = Path(workdir) if workdir is not None else Path(tempfile.gettempdir()) / "tfkit-csv"
    folder = base / f"records-{split}-{key}"
    if not (folder / records.SCHEMA_FILE).exists():
        label = config.label if split != "test" else None
        table = CSVImageSource(source, images=config.images, id_column=config.id, label_column=label)
        records.write(table, folder, split=split)
        print(f"tfkit: wrote {len(table)} records of {source} to {folder}")
    schema = read_schema(folder)
    shards = tuple(dataclasses.replace(shard, file=str(folder.resolve() / shard.file)) for shard in schema.shards)
    return dataclasses.replace(schema, shards=shards)


def _declared_schema(source: str | Sequence[str], config: DataConfig) -> Schema | None:
    """The schema written for ``source``: its folder's ``schema.json``, or ``data.schema``; None when there is none."""
    if isinstance(source, str) and not _is_glob(source) and not config.schema:
        if files.exists(os.path.join(source, records.SCHEMA_FILE)) or not files.exists(source):
            return read_schema(source)  # a missing folder is reported there
        return None
    place = config.schema
    if place is None:
        if not isinstance(source, str):
            return None
        place = os.path.dirname(source)
        if not files.exists(os.path.join(place, records.SCHEMA_FILE)):
            return None
    return _glob_schema(source, place)


def _inferred_schema(
    source: str | Sequence[str],
    config: DataConfig,
    *,
    split: str,
    workdir: str | os.PathLike[str] | None,
    num_classes: int | None,
) -> Schema:
    paths = [path if "://" in path else os.path.abspath(path) for path in infer.expand(source)]
    saved = inferred_schema_path(workdir, split) if workdir is not None else None
    if saved is not None and saved.exists():
        schema = read_schema_file(str(saved))
        if [shard.file for shard in schema.shards] == paths:
            print(f"tfkit: reading the schema of data.{split} from {saved}")
            return schema
    schema = infer.infer_schema(
        paths,
        split=split,
        label=config.label,
        count=config.count_records,
        num_classes=num_classes,
        labels=split != "test",
    )
    schema = dataclasses.replace(schema, inferred=schema.to_json())
    print(f"tfkit: inferred the schema of data.{split}: {infer.summary(schema)}")
    if saved is not None:
        keep_inferred(schema, workdir=saved.parent)
    return schema


def keep_inferred(schema: Schema, *, workdir: str | os.PathLike[str]) -> None:
    """Keeps an inferred schema in the run's workdir (``schema-SPLIT.json``), so a resume reads it from there.

    A schema that was not inferred, or one already kept, writes nothing. Input folders may be read-only
    (``/kaggle/input``), so the schema goes with the run, never beside the data.
    """
    saved = inferred_schema_path(workdir, schema.split)
    if schema.inferred is None or saved.exists():
        return
    saved.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(saved, json.dumps(schema.inferred, indent=2) + "\n")
    print(f"tfkit: the inferred schema of data.{schema.split} is kept in {saved} (edit it and set data.schema)")


def _is_glob(source: str) -> bool:
    return any(char in source for char in "*?[")


def _glob_schema(source: str | Sequence[str], place: str) -> Schema:
    """The shards of a schema (a folder's ``schema.json``, or a schema file) that ``source`` matches."""
    if "://" not in place:
        place = os.path.abspath(place)
    if place.endswith(".json"):
        folder = os.path.dirname(place)
        schema = read_schema_file(place)
    else:
        folder = place
        schema = read_schema(folder)
    matched = [path if "://" in path else os.path.abspath(path) for path in infer.expand(source)]
    known = {
        path if "://" in path else os.path.abspath(path): shard
        for shard, path in zip(schema.shards, schema.files(folder), strict=True)
    }
    unknown = [path for path in matched if path not in known]
    if unknown:
        raise UserError(
            f"'{unknown[0]}' is in the data but not a shard of the schema in '{place}'; expected only that schema's "
            "shards. Narrow the glob, or add the file to the schema (python -m tfkit.records schema writes one)."
        )
    # Absolute paths: Schema.files joins them to the glob unchanged, so every reader treats both forms alike.
    shards = tuple(dataclasses.replace(known[path], file=path) for path in matched)
    return dataclasses.replace(schema, shards=shards, records=sum(shard.records for shard in shards))


def _skip_corrupt(source: str | Sequence[str], schema: Schema) -> Schema:
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
    with (
        atomic.replacing(target) as temporary,
        records.open_stream(path, compression) as stream,
        records.ShardWriter(str(temporary), compression) as writer,
    ):
        position = 0
        for offset, length in spans:
            stream.read(offset - position)  # streams: skip forward to the record's data
            writer.write(stream.read(length))
            position = offset + length
    return target
