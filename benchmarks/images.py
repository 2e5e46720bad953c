"""Images of varying size, read, decoded, resized to 128 and augmented: tfkit against the alternatives, in one process.

A folder of a few thousand generated JPEGs (``--images``, of 96 to 320 pixels a side, in 2 class folders) is
converted once with ``tfkit.records.write``. Then, alternating for ``--repeats`` rounds after a warm-up, each
round reads the images as a training run does (see ``alternate``):

- ``tfkit``: ``tfkit.data.dataset_fn`` over the shards, ``data.image_size: [128, 128]``, a seeded flip-and-crop
  ``data.augment``; one dataset and one iterator for every epoch, as ``tfkit.train`` reads it;
- ``hand``: a hand-tuned ``tf.data`` pipeline over the same shards (parallel reads, parse and decode with
  ``AUTOTUNE``, the same augmentation), the practical limit; built once, an iterator per epoch, as ``model.fit``
  reads it;
- ``keras``: ``keras.utils.image_dataset_from_directory`` over the JPEG folder, with the same augmentation, read
  as ``hand`` is.

Two kinds of round: a training run of ``--epochs`` epochs (3), each pipeline built once, and a run of one epoch,
where building the pipeline and waiting for its first batch weigh the most. Goals, judged on the training rounds
(how a pipeline is used): tfkit at least 0.9x ``hand`` and faster than ``keras``, streaming (the clock stops at the
last batch). The same ratios with the iterators' teardown
counted are printed beside them: a pipeline with tf.data's autotuning stalls there for up to a second, and
``model.fit`` makes an iterator per epoch.

It also times ``tfkit.predict.run`` of the run folder against the same predictions written by hand
(``keras.models.load_model`` of the exported model, a ``tf.data`` pipeline of the same shards with its own decoding,
``model.predict``), both from files to a ``.npy`` (goal >= 1.0x): end to end (one whole call each, restore or load
and tracing included), and in the steady state (the model restored or loaded, and its predict step traced, before
timing); see ``predict_comparison``. And, in a subprocess with 8 CPU replicas, the cost of an epoch boundary: one
iterator for every epoch (what tfkit's trainer does) against an iterator built and torn down per epoch (goal < 1 s).
The last line is JSON.

    python benchmarks/images.py [--images 3000] [--batch 32] [--repeats 3] [--epochs 3]
        [--skip_boundary] [--skip_pipeline]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import tfkit.predict
import tfkit.train
from tfkit import config as config_lib
from tfkit import data, distribute, export, loop, records, restore
from tfkit.records.sources import ImageFolderSource

SIZE = 128
AUGMENT = """
import tensorflow as tf

def flip_and_crop(images, labels, seed):
    images = tf.image.stateless_random_flip_left_right(images, seed)
    batch = tf.shape(images)[0]
    cropped = tf.image.stateless_random_crop(images, tf.stack([batch, 112, 112, 3]), seed + 1)
    return tf.image.resize(cropped, [128, 128]), labels
"""
MODEL = """
import keras

def small(*, input_shape, num_classes):
    inputs = keras.Input(input_shape)
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Conv2D(8, 5, strides=4, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))
"""


def flip_and_crop(images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The augmentation every pipeline applies (the same as ``AUGMENT``)."""
    images = tf.image.stateless_random_flip_left_right(images, seed)
    batch = tf.shape(images)[0]
    cropped = tf.image.stateless_random_crop(images, tf.stack([batch, 112, 112, 3]), seed + 1)
    return tf.image.resize(cropped, [SIZE, SIZE]), labels


def make_images(root: Path, count: int) -> None:
    """Writes ``count`` JPEGs of varying size in two class folders."""
    generator = np.random.default_rng(0)
    for index in range(count):
        height, width = (int(size) for size in generator.integers(96, 320, size=2))
        pixels = generator.integers(0, 255, size=(height // 8, width // 8, 3), dtype=np.uint8)
        image = tf.image.resize(pixels, [height, width], method="nearest")  # blocks: JPEG-sized like photos
        folder = root / ("a" if index % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index:05d}.jpg").write_bytes(tf.io.encode_jpeg(tf.cast(image, tf.uint8), quality=90).numpy())


def count_images(batches: Iterable[tuple[tf.Tensor, ...]]) -> int:
    """Iterates (images, labels, ...) batches (a dataset, an iterator, a slice of one) and returns the examples seen."""
    seen = 0
    for batch in batches:
        seen += int(batch[0].shape[0])
    return seen


def hand_tuned(shards: list[str], batch: int) -> tf.data.Dataset:
    """The limit: parallel reads, decoding and resizing with AUTOTUNE, then the same augmentation."""
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}

    def decode(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        parsed = tf.io.parse_single_example(record, spec)
        image = tf.io.decode_jpeg(parsed["image"], channels=3)
        return tf.cast(tf.image.resize(image, [SIZE, SIZE]), tf.uint8), parsed["label"]

    dataset = tf.data.TFRecordDataset(shards, num_parallel_reads=tf.data.AUTOTUNE)
    dataset = dataset.shuffle(1024, seed=0).map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch, drop_remainder=True).enumerate()
    dataset = dataset.map(
        lambda index, pair: flip_and_crop(pair[0], pair[1], tf.stack([0, tf.cast(index, tf.int32)])),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def keras_folder(folder: Path, batch: int) -> tf.data.Dataset:
    """``keras.utils.image_dataset_from_directory`` with the same augmentation."""
    dataset = keras.utils.image_dataset_from_directory(
        folder, image_size=(SIZE, SIZE), batch_size=batch, seed=0, verbose=False
    )
    dataset = dataset.enumerate().map(
        lambda index, pair: flip_and_crop(pair[0], pair[1], tf.stack([0, tf.cast(index, tf.int32)])),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


Epochs = Callable[[int], Iterator[Iterable[tuple[tf.Tensor, ...]]]]  # epochs -> one iterable of batches per epoch


def once_per_epoch(build: Callable[[], tf.data.Dataset]) -> Epochs:
    """A pipeline as ``model.fit`` runs it: built once, with a new iterator for every epoch."""

    def epochs(count: int) -> Iterator[Iterable[tuple[tf.Tensor, ...]]]:
        dataset = build()
        for _ in range(count):
            yield iter(dataset)

    return epochs


def alternate(candidates: dict[str, Epochs], repeats: int, *, epochs: int) -> dict[str, dict[str, float]]:
    """Examples per second of each candidate: median over rounds that alternate, after one warm-up each.

    A round is ``epochs`` epochs from scratch, as a training run reads them: the candidate builds its dataset
    (tracing its functions) and iterates it to the end of the last epoch, where the clock stops. With one epoch
    that is the cold cost of a run of one epoch; with more, the building and the first batch's wait weigh as they
    do over a short run (a real one amortises them over every epoch). Iterators are kept until the clock has
    stopped, then torn down, which is timed apart: deleting an autotuned iterator stalls for up to a second at
    random, which left the rates of one-epoch rounds bimodal. tfkit's trainer pays it once a run (one iterator
    serves every epoch); ``model.fit``, which makes an iterator per epoch, pays it every epoch.
    """
    for make in candidates.values():
        for epoch in make(1):
            count_images(epoch)
    rates: dict[str, list[float]] = {name: [] for name in candidates}
    with_teardown: dict[str, list[float]] = {name: [] for name in candidates}
    teardowns: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, make in candidates.items():
            gc.collect()  # the garbage of the last round (traced functions, iterators) is not this round's cost
            started = time.perf_counter()
            kept, examples = [], 0
            for epoch in make(epochs):
                kept.append(epoch)
                examples += count_images(epoch)
            streamed = time.perf_counter() - started
            rates[name].append(examples / streamed)
            started = time.perf_counter()
            del kept, epoch
            teardowns[name].append(time.perf_counter() - started)
            with_teardown[name].append(examples / (streamed + teardowns[name][-1]))
    return {
        "examples_per_second": {name: statistics.median(values) for name, values in rates.items()},
        "examples_per_second_with_teardown": {
            name: statistics.median(values) for name, values in with_teardown.items()
        },
        "teardown_seconds": {name: statistics.median(values) for name, values in teardowns.items()},
    }


def boundary(shards_root: str, *, epochs: int, batch: int) -> dict[str, float]:
    """In this process (8 CPU replicas): seconds per epoch boundary, one iterator against one per epoch."""
    strategy = distribute.select(config_lib.DistributeConfig(strategy="cpu", cpu_replicas=8)).strategy
    section = config_lib.DataConfig(train=shards_root, features="image", label="label", image_size=(32, 32))
    schema = data.load_schema(shards_root, section)
    steps = max(1, schema.records // (batch * 8))

    @tf.function
    def step(iterator: object, count: tf.Tensor) -> tf.Tensor:
        total = tf.constant(0.0)
        for _ in tf.range(count):
            x, _, _ = next(iterator)  # type: ignore[call-overload]
            total += strategy.reduce("SUM", strategy.run(lambda x: tf.reduce_sum(tf.cast(x, tf.float32)), (x,)), None)
        return total

    def make(epoch: int, until: int | None) -> object:
        return iter(
            strategy.distribute_datasets_from_function(
                data.dataset_fn(
                    shards_root,
                    schema,
                    section,
                    per_replica_batch_size=batch,
                    training=True,
                    seed=0,
                    epoch=epoch,
                    until_epoch=until,
                    batches_per_epoch=steps * 8,
                )
            )
        )

    costs: dict[str, float] = {}
    for mode in ("per_epoch", "one_iterator"):
        iterator = make(0, epochs) if mode == "one_iterator" else None
        gaps = []
        for epoch in range(epochs):
            started = time.perf_counter()
            if mode == "per_epoch":
                iterator = make(epoch, None)
            step(iterator, tf.constant(1))  # the boundary: everything until the epoch's first step is done
            gaps.append(time.perf_counter() - started)
            if steps > 1:
                step(iterator, tf.constant(steps - 1))
            if mode == "per_epoch":
                started = time.perf_counter()
                del iterator
                gc.collect()
                gaps[-1] += time.perf_counter() - started
        costs[mode] = statistics.median(gaps[1:])  # the first includes tracing
    return costs


def predict_comparison(scratch: Path, shards: list[str], *, batch: int, repeats: int) -> dict[str, float]:
    """Median seconds of each way to predict every record of the shards.

    Each side reads the same shards with its own decoding. End to end, both start from files and end with the
    outputs saved as ``.npy``:

    - ``tfkit``: ``tfkit.predict.run`` of the run folder: restores the best checkpoint, reads the split's schema,
      builds its pipeline (parse, decode, resize, pad), traces its predict step, predicts, writes the file;
    - ``keras``: what a user writes by hand from the model ``tfkit.export`` wrote: ``keras.models.load_model``, a
      ``tf.data`` pipeline (parse, ``decode_jpeg``, resize, ``AUTOTUNE``), ``model.predict`` (which traces),
      ``np.save``.

    In the steady state, the model is restored (loaded) and its predict step traced once, before timing; each
    round builds the pipeline and predicts:

    - ``tfkit_steady``: ``tfkit.data.dataset_fn`` under the run's strategy and the predict step of
      ``tfkit.loop``, ``train.steps_per_execution`` batches per call, as ``tfkit.predict`` runs them;
    - ``prebuilt``: the same ``tf.data`` pipeline as ``keras`` and ``model.predict`` of the model loaded once
      (what this benchmark's ratio compared ``tfkit.predict.run`` with before it had these figures).
    """
    model_path = scratch / "model.py"
    model_path.write_text(MODEL)
    run = scratch / "run"
    tfkit.train.run(
        {
            "model": f"{model_path}:small",
            "data": {"train": str(scratch / "shards"), "image_size": [SIZE, SIZE], "shuffle_buffer": 256},
            "train": {"epochs": 1, "global_batch_size": batch, "steps_per_execution": 8},
            "distribute": {"strategy": "cpu"},
        },
        workdir=run,
    )
    keras_file = scratch / "model.keras"
    export.export(run, keras_file)
    prebuilt = keras.models.load_model(keras_file)
    restored = restore.load(run)
    schema, section = restore.read_split(str(scratch / "shards"), restored.config, labeled=False)
    step = loop.make_predict_function(strategy=restored.selected.strategy, model=restored.model)
    spec = {"image": tf.io.FixedLenFeature([], tf.string)}

    def pipeline() -> tf.data.Dataset:
        dataset = tf.data.TFRecordDataset(shards).map(
            lambda record: tf.cast(
                tf.image.resize(tf.io.decode_jpeg(tf.io.parse_single_example(record, spec)["image"], 3), [SIZE, SIZE]),
                tf.uint8,
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        return dataset.batch(batch).prefetch(tf.data.AUTOTUNE)

    def by_hand(model: keras.Model | None) -> None:
        loaded = model if model is not None else keras.models.load_model(keras_file)
        np.save(scratch / "keras.npy", loaded.predict(pipeline(), verbose=0))

    def by_tfkit() -> None:
        out = scratch / "outputs.npy"
        tfkit.predict.run(run, data=str(scratch / "shards"), out=out, output="raw", force=True, progress=False)

    def tfkit_steady() -> None:
        strategy = restored.selected.strategy
        dataset = strategy.distribute_datasets_from_function(
            data.dataset_fn(
                str(scratch / "shards"), schema, section, per_replica_batch_size=batch, training=False, seed=0, epoch=0
            )
        )
        steps = data.eval_steps(schema, per_replica_batch_size=batch, pipelines=1, replicas=1)
        iterator, per_call, outputs = iter(dataset), restored.config.train.steps_per_execution, []
        for done in range(0, steps, per_call):
            outputs.append(step(iterator, tf.constant(min(per_call, steps - done)))[0].numpy())
        np.save(scratch / "steady.npy", np.concatenate(outputs))

    seconds = median_seconds(
        {
            "tfkit": by_tfkit,
            "keras": lambda: by_hand(None),
            "tfkit_steady": tfkit_steady,
            "prebuilt": lambda: by_hand(prebuilt),
        },
        repeats,
    )
    assert len(np.load(scratch / "outputs.npy")) == len(np.load(scratch / "keras.npy"))
    return seconds


def predict_ratios(seconds: dict[str, float]) -> dict[str, float]:
    """tfkit.predict's speed over the others' (above 1: tfkit is faster), end to end and in the steady state."""
    return {
        "predict_end_to_end": seconds["keras"] / seconds["tfkit"],
        "predict_steady_state": seconds["prebuilt"] / seconds["tfkit_steady"],
        "predict_vs_prebuilt_model": seconds["prebuilt"] / seconds["tfkit"],
    }


def median_seconds(candidates: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds of each candidate over rounds that alternate, after one warm-up each."""
    for run in candidates.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            gc.collect()
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    """Runs the benchmark and prints the ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="epochs a training round reads")
    parser.add_argument("--skip_boundary", action="store_true")
    parser.add_argument("--skip_pipeline", action="store_true", help="time predictions (and the boundary) only")
    parser.add_argument("--boundary_only", help=argparse.SUPPRESS)  # the 8-replica subprocess
    args = parser.parse_args()
    if args.boundary_only:
        print(json.dumps(boundary(args.boundary_only, epochs=4, batch=4)))
        return

    scratch = Path(tempfile.mkdtemp(prefix="tfkit-images-"))
    folder = scratch / "jpegs"
    make_images(folder, args.images)
    schema = records.write(ImageFolderSource(str(folder)), scratch / "shards", min_shards=8)
    shards = schema.files(str(scratch / "shards"))
    augment_file = scratch / "augment.py"
    augment_file.write_text(AUGMENT)
    section = config_lib.DataConfig(
        train=str(scratch / "shards"),
        image_size=(SIZE, SIZE),
        augment=f"{augment_file}:flip_and_crop",
        shuffle_buffer=1024,
    )
    loaded = data.load_schema(str(scratch / "shards"), section)

    per_epoch = loaded.records // args.batch

    def tfkit_epochs(count: int) -> Iterator[Iterable[tuple[tf.Tensor, ...]]]:
        # As tfkit.train reads them: one dataset and one iterator for every epoch, each epoch's batches counted.
        make = data.dataset_fn(
            str(scratch / "shards"),
            loaded,
            section,
            per_replica_batch_size=args.batch,
            training=True,
            seed=0,
            epoch=0,
            until_epoch=count,
            batches_per_epoch=per_epoch,
        )
        iterator = iter(make(tf.distribute.InputContext()))
        for _ in range(count):
            yield islice(iterator, per_epoch)

    result: dict[str, object] = {"images": args.images, "epochs": args.epochs}
    if not args.skip_pipeline:
        candidates = {
            "tfkit": tfkit_epochs,
            "hand": once_per_epoch(lambda: hand_tuned(shards, args.batch)),
            "keras": once_per_epoch(lambda: keras_folder(folder, args.batch)),
        }
        for label, epochs in (("one_epoch", 1), ("training", args.epochs)):
            measured = alternate(candidates, args.repeats, epochs=epochs)
            result[label] = measured
            rates, torn = measured["examples_per_second"], measured["examples_per_second_with_teardown"]
            for other in ("hand", "keras"):
                result[f"{label}_tfkit_vs_{other}"] = rates["tfkit"] / rates[other]
                result[f"{label}_tfkit_vs_{other}_with_teardown"] = torn["tfkit"] / torn[other]
    predict_seconds = predict_comparison(scratch, shards, batch=args.batch, repeats=args.repeats)
    result["predict_seconds"] = predict_seconds
    result.update(predict_ratios(predict_seconds))
    if not args.skip_boundary:
        process = subprocess.run(
            [sys.executable, __file__, "--boundary_only", str(scratch / "shards")],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            check=True,
        )
        result["epoch_boundary_seconds_8_replicas"] = json.loads(process.stdout.strip().splitlines()[-1])
    if not args.skip_pipeline:
        for label, what, goals in (
            ("training", f"{args.epochs} epochs, each built once", (" (goal >= 0.9x)", " (goal > 1x)")),
            ("one_epoch", "one epoch, for comparison", ("", "")),
        ):
            print(
                f"tfkit pipeline, {what}: {result[f'{label}_tfkit_vs_hand']:.2f}x hand-tuned tf.data{goals[0]}, "
                f"{result[f'{label}_tfkit_vs_keras']:.2f}x keras image_dataset_from_directory{goals[1]}; with "
                f"iterator teardown {result[f'{label}_tfkit_vs_hand_with_teardown']:.2f}x and "
                f"{result[f'{label}_tfkit_vs_keras_with_teardown']:.2f}x"
            )
    print(
        f"tfkit.predict vs load_model + model.predict: {result['predict_end_to_end']:.2f}x end to end, "
        f"{result['predict_steady_state']:.2f}x steady state (goal >= 1.0x); "
        f"{result['predict_vs_prebuilt_model']:.2f}x against model.predict of a model already loaded and traced"
    )
    if "epoch_boundary_seconds_8_replicas" in result:
        costs: dict[str, float] = result["epoch_boundary_seconds_8_replicas"]  # type: ignore[assignment]
        print(
            f"epoch boundary at 8 replicas: {costs['one_iterator']:.2f} s with one iterator, "
            f"{costs['per_epoch']:.2f} s with one per epoch (goal < 1 s)"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
