"""Streaming TFRecord splits to every replica through ``distribute_datasets_from_function``, with bounded memory.

Each input pipeline (one per worker host) reads its own subset of the shard files, chosen by the InputContext, so no
record is read twice in an epoch. Then, in order:

1. a seeded shuffle of the pipeline's files;
2. a parallel, deterministic interleave of their records (optionally cached to a file, ``data.cache``);
3. a seeded shuffle of the serialized records, in a buffer bounded in examples and in bytes;
4. batch, then parse: ``parse_example`` on whole batches, far cheaper than per record;
5. decode by the schema (raw arrays, int64 lists, JPEG/PNG, strings), with static shapes;
6. the user's augment function (training only), then prefetch.

Parallelism is fixed by default: the interleave reads as many files at once as it cycles through (up to 8), parsing
uses every CPU core, and 2 batches are prefetched, so memory is at its steady size from the first batch.
``data.autotune: true`` lets tf.data tune these within ``data.ram_budget``; it can be faster on some hosts, and its
buffers grow for minutes, so memory then creeps with running time.

Training batches are static (``drop_remainder=True``). Eval batches are padded to a static shape with a zero weight
on the padding, so eval sees every record once, on any device. Instead of ``repeat()``, each epoch gets a fresh
dataset whose order is a function of the seed and the epoch alone: that is what lets a resumed run rebuild the exact
position from a count.

Host memory is bounded by the shuffle buffer (``data.shuffle_buffer`` examples, at most ``data.shuffle_buffer_bytes``),
the interleave's open files (at most 8 read buffers), the parse stage (one batch per core) and the prefetch depth;
never by the size of the data.

Corrupt records: by default a ``DataLossError`` stops the run (tfkit.train names the shard). With
``data.skip_corrupt``, ``load_schema`` scans every shard once at start; a shard with bad records is read from a
repaired copy holding only its good ones, and the bad ones are counted and reported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from tfkit import records, user_code
from tfkit.config import DataConfig
from tfkit.errors import UserError
from tfkit.records import IMAGE_ENCODINGS, Feature, Schema, Shard, read_schema

Batch = tuple[tf.Tensor, tf.Tensor, tf.Tensor]  # features, labels, per-example weights

_MAX_INTERLEAVE = 8
_PREFETCH_BATCHES = 2  # per input pipeline, without data.autotune
_RECORDS_PER_READ = 256
_SMALL_RECORD_BYTES = 4096


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


def load_schema(source: str, config: DataConfig) -> Schema:
    """Reads a split's schema (a folder, or a glob of shards with ``data.schema``) and checks it against the config.

    With ``data.image_size``, encoded images get that size in the returned schema. With ``data.skip_corrupt``,
    every shard is scanned, and shards with bad records are replaced by repaired copies (see the module's doc).

    Raises:
        UserError: The folder, schema or files are missing, the glob matches nothing, or a feature does not exist.
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
    if config.skip_corrupt:
        schema = _skip_corrupt(source, schema)
    return schema


def shuffle_examples(schema: Schema, config: DataConfig) -> int:
    """Examples the shuffle buffer holds: ``data.shuffle_buffer``, fewer when that would pass its byte bound."""
    if not config.shuffle_buffer:
        return 0
    limit = config.shuffle_buffer_bytes
    return max(1, min(config.shuffle_buffer, limit // max(record_bytes(schema), 1)))


def record_bytes(schema: Schema) -> int:
    """Bytes of one serialized record, on average (what the shuffle buffer holds per example)."""
    decoded = sum(feature.example_bytes for feature in schema.features.values())
    on_disk = schema.bytes // max(schema.records, 1) if schema.compression is None else 0
    return max(decoded, on_disk, 1)


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


def dataset_fn(
    folder: str,
    schema: Schema,
    config: DataConfig,
    *,
    per_replica_batch_size: int,
    training: bool,
    seed: int,
    epoch: int,
    skip_batches: int = 0,
) -> Callable[[tf.distribute.InputContext], tf.data.Dataset]:
    """Returns the function that ``strategy.distribute_datasets_from_function`` calls once per input pipeline.

    Args:
        folder: The split's folder.
        schema: Its schema.
        config: The ``data`` section.
        per_replica_batch_size: Examples in each batch the pipeline yields (one replica's micro-batch).
        training: Shuffle and drop the remainder (training), or keep every record in order, padded (eval).
        seed: The run's seed.
        epoch: The epoch whose order to produce; with ``seed`` it fixes the order.
        skip_batches: Batches of this pipeline to skip, to resume mid-epoch at exactly the next batch.

    Returns:
        A function from an InputContext to a dataset of ``(features, labels, weights)`` batches.
    """
    files = schema.files(folder)
    epoch_seed = (seed * 1_000_003 + epoch) % (2**31 - 1)
    shuffle = shuffle_examples(schema, config)
    augment = _augment(config) if training else None
    # Fixed parallelism and prefetch put the pipeline's memory at its steady size from the first batch; autotuning
    # grows its buffers and threads for minutes, so memory creeps with running time (see data.autotune).
    parallel = tf.data.AUTOTUNE if config.autotune else (os.cpu_count() or 1)
    # Small records pass the parallel interleave in blocks: its cost is per element, and a 256-byte record would
    # pay it 256 times over. Large records go one by one, which keeps the interleave's buffers small.
    per_read = _RECORDS_PER_READ if record_bytes(schema) <= _SMALL_RECORD_BYTES else 1

    def read_file(path: tf.Tensor) -> tf.data.Dataset:
        file_records = tf.data.TFRecordDataset(path, compression_type=schema.compression or "")
        return file_records.batch(per_read) if per_read > 1 else file_records

    def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
        if len(files) < context.num_input_pipelines:
            raise UserError(
                f"'{folder}' has {len(files)} shard file(s) for {context.num_input_pipelines} input pipelines; "
                "expected at least one per pipeline. Write the data again with more shards."
            )
        mine = files[context.input_pipeline_id :: context.num_input_pipelines]
        dataset = tf.data.Dataset.from_tensor_slices(mine)
        if training and not config.cache:  # a cache is written in one file order and read back in it
            dataset = dataset.shuffle(len(mine), seed=epoch_seed)
        dataset = dataset.interleave(
            read_file,
            cycle_length=min(len(mine), _MAX_INTERLEAVE),
            num_parallel_calls=tf.data.AUTOTUNE if config.autotune else min(len(mine), _MAX_INTERLEAVE),
            deterministic=True,
        )
        if per_read > 1:
            dataset = dataset.unbatch()
        if config.cache:
            split = "train" if training else "eval"
            dataset = dataset.cache(
                f"{config.cache}-{split}-{context.input_pipeline_id}-of-{context.num_input_pipelines}"
            )
        if training and shuffle:
            dataset = dataset.shuffle(shuffle, seed=epoch_seed)
        dataset = dataset.batch(per_replica_batch_size, drop_remainder=training)
        if skip_batches:
            dataset = dataset.skip(skip_batches)  # before parsing: skipped batches are read, never decoded
        parse = _parser(schema, features=config.features, label=config.label, image_size=config.image_size)
        dataset = dataset.map(parse, num_parallel_calls=parallel, deterministic=True)
        if augment is not None:
            dataset = dataset.map(lambda x, y, w: (*augment(x, y), w), num_parallel_calls=parallel, deterministic=True)
        if not training:
            dataset = dataset.map(lambda x, y, w: _pad(x, y, w, per_replica_batch_size))
        options = tf.data.Options()
        options.deterministic = config.deterministic
        options.autotune.enabled = config.autotune
        if config.autotune and config.ram_budget:
            options.autotune.ram_budget = config.ram_budget
        # Files are already split per pipeline above; stop tf.distribute from sharding a second time.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return dataset.with_options(options).prefetch(tf.data.AUTOTUNE if config.autotune else _PREFETCH_BATCHES)

    return make


def _augment(config: DataConfig) -> Callable[..., Any] | None:
    if not config.augment:
        return None
    function = user_code.load_function(config.augment, key="data.augment")

    def apply(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        result = function(x, y)
        if not isinstance(result, tuple) or len(result) != 2:
            raise UserError(
                f"config key 'data.augment': '{config.augment}' returned {type(result).__name__}; expected a "
                "(features, labels) tuple."
            )
        return result

    return apply


def _parser(
    schema: Schema, *, features: str, label: str, image_size: tuple[int, ...] = ()
) -> Callable[[tf.Tensor], Batch]:
    specs = {name: _parse_spec(schema.features[name]) for name in (features, label)}

    def parse(serialized: tf.Tensor) -> Batch:
        parsed = tf.io.parse_example(serialized, specs)
        batch = serialized.shape[0]  # static after drop_remainder; TPUs need it kept
        x = _decode(parsed[features], schema.features[features], batch=batch, image_size=image_size)
        y = _decode(parsed[label], schema.features[label], batch=batch, image_size=image_size)
        weights = tf.ones(tf.shape(serialized)[:1], tf.float32)
        return x, y, weights

    return parse


def _parse_spec(feature: Feature) -> tf.io.FixedLenFeature:
    if feature.encoding == "int64":
        return tf.io.FixedLenFeature(list(feature.shape), tf.int64)
    return tf.io.FixedLenFeature([], tf.string)


def _decode(value: tf.Tensor, feature: Feature, *, batch: int | None, image_size: tuple[int, ...]) -> tf.Tensor:
    if feature.encoding == "raw":
        flat = tf.io.decode_raw(value, tf.dtypes.as_dtype(feature.dtype))
        return tf.reshape(flat, [-1 if batch is None else batch, *feature.shape])
    if feature.encoding == "string":
        return value
    if feature.encoding in IMAGE_ENCODINGS:
        channels = feature.shape[-1]
        shape = (*image_size, channels) if image_size else tuple(None if size < 0 else size for size in feature.shape)

        def one(data: tf.Tensor) -> tf.Tensor:
            image = tf.io.decode_image(data, channels=channels, dtype=tf.uint8, expand_animations=False)
            if image_size:
                image = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, image_size)), 0, 255), tf.uint8)
            return tf.ensure_shape(image, shape)

        decoded = tf.map_fn(one, value, fn_output_signature=tf.TensorSpec(shape, tf.uint8))
        return tf.ensure_shape(decoded, [batch, *shape]) if batch is not None else decoded
    return tf.cast(value, tf.dtypes.as_dtype(feature.dtype))


def _pad(x: tf.Tensor, y: tf.Tensor, weights: tf.Tensor, size: int) -> Batch:
    missing = size - tf.shape(weights)[0]

    def pad(tensor: tf.Tensor) -> tf.Tensor:
        paddings = [[0, missing]] + [[0, 0]] * (tensor.shape.rank - 1)
        padded = tf.pad(tensor, paddings)
        padded.set_shape([size, *tensor.shape[1:]])
        return padded

    return pad(x), pad(y), pad(weights)
