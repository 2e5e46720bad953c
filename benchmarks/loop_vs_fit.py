"""tfkit's training loop against Keras ``model.fit`` and a minimal hand-written loop, in one process.

All three train the same model from identical initial weights, on the same in-memory batches, with the same global
batch and the same optimizer steps per ``tf.function`` call. The model is either the digits CNN (the embedded
default's model) on the bundled digits (``--model digits``), or a realistic fine-tuning model (``--model backbone``):
``keras.applications.EfficientNetV2B0`` without its top plus tfkit's head, built by ``tfkit.models`` from
``model.backbone``, all of it trained, on random 64x64 images of 10 classes (nothing can be downloaded):

- ``tfkit``: tfkit's compiled step, under the strategy ``python -m tfkit.train`` picks on a CPU, with its accuracy
  metric and weighted loss;
- ``fit``: ``model.fit`` with ``steps_per_execution`` and the same accuracy metric;
- ``limit``: a ``tf.range`` loop inside one ``tf.function`` with no strategy, no metric and no weights, the
  practical limit.

After one warm-up round each (tracing), the three alternate for ``--repeats`` rounds of ``--steps`` steps each, so
the machine's noise falls on all of them alike. The last line is JSON.

    python benchmarks/loop_vs_fit.py [--batch 64] [--steps_per_execution 16] [--steps 480] [--repeats 9]
    python benchmarks/loop_vs_fit.py --model backbone --batch 32 --steps_per_execution 4 --steps 24 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfkit import distribute, loop, losses, metric_builder, models, records
from tfkit.config import DataConfig, DistributeConfig, ModelConfig
from tfkit.data import dataset_fn

DIGITS = Path(__file__).resolve().parents[1] / "tfrecords" / "digits" / "train"


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Reads the bundled digits through tfkit's reader, once."""
    schema = records.read_schema(DIGITS)
    make = dataset_fn(
        str(DIGITS),
        schema,
        DataConfig(train=str(DIGITS)),
        per_replica_batch_size=schema.records,
        training=False,
        seed=0,
        epoch=0,
    )
    x, y, _ = next(iter(make(tf.distribute.InputContext())))
    return x.numpy(), y.numpy()


def backbone_arrays(size: int = 64, examples: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Random images on the 0-255 scale, as the backbone expects, and 10 classes."""
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (examples, size, size, 3)).astype(np.float32), rng.integers(0, 10, examples)


def batches(x: np.ndarray, y: np.ndarray, batch: int) -> tf.data.Dataset:
    """Endless static batches of (features, labels, weights), prefetched."""
    weights = np.ones(len(y), np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((x, y, weights)).cache().shuffle(len(y), seed=0).repeat()
    return dataset.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


MODEL = "digits"


def fresh_model(input_shape: tuple[int, ...]) -> keras.Model:
    keras.utils.set_random_seed(0)
    if MODEL == "backbone":
        return models.build(ModelConfig(backbone="EfficientNetV2B0"), input_shape=input_shape, num_classes=10)
    return models.digits_cnn(input_shape=input_shape, num_classes=10)


def tfkit_runner(x, y, batch, steps_per_execution):
    strategy = distribute.select(DistributeConfig(strategy="cpu")).strategy  # what python -m tfkit.train picks
    with strategy.scope():
        model = fresh_model(x.shape[1:])
        optimizer = keras.optimizers.Adam(1e-3)
        optimizer.build(model.trainable_variables)
        metrics = metric_builder.make_metrics(
            ("accuracy",), loss="sparse_categorical_crossentropy", from_logits=True, num_classes=10
        )
    train = loop.make_train_function(
        strategy=strategy,
        model=model,
        optimizer=optimizer,
        loss_fn=losses.per_example_loss("sparse_categorical_crossentropy", from_logits=True),
        metrics=metrics,
        settings=loop.StepSettings(global_batch_size=batch),
    )
    iterator = iter(strategy.experimental_distribute_dataset(batches(x, y, batch)))
    calls = tf.constant(steps_per_execution)

    def run(steps: int) -> float:
        loss = 0.0
        for _ in range(steps // steps_per_execution):
            loss = float(train(iterator, calls))  # tfkit reads the loss after every call, for its logs
        return loss

    return run


def fit_runner(x, y, batch, steps_per_execution):
    model = fresh_model(x.shape[1:])
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    dataset = batches(x, y, batch)

    def run(steps: int) -> float:
        history = model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        return float(history.history["loss"][-1])

    return run


def limit_runner(x, y, batch, steps_per_execution):
    model = fresh_model(x.shape[1:])
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    loss_object = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    iterator = iter(batches(x, y, batch))

    @tf.function
    def train(iterator, steps):
        loss = tf.constant(0.0)
        for _ in tf.range(steps):
            features, labels, _ = next(iterator)
            with tf.GradientTape() as tape:
                loss = loss_object(labels, model(features, training=True))
            optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    calls = tf.constant(steps_per_execution)

    def run(steps: int) -> float:
        loss = 0.0
        for _ in range(steps // steps_per_execution):
            loss = float(train(iterator, calls))
        return loss

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["digits", "backbone"], default="digits")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps_per_execution", type=int, default=16)
    parser.add_argument("--steps", type=int, default=480, help="optimizer steps per timed round")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    global MODEL
    MODEL = args.model
    x, y = digits_arrays() if args.model == "digits" else backbone_arrays()
    runners = {
        name: make(x, y, args.batch, args.steps_per_execution)
        for name, make in (("tfkit", tfkit_runner), ("fit", fit_runner), ("limit", limit_runner))
    }
    for run in runners.values():
        run(args.steps_per_execution * 2)  # trace and warm up
    timings: dict[str, list[float]] = {name: [] for name in runners}
    for repeat in range(args.repeats):
        order = list(runners) if repeat % 2 == 0 else list(reversed(runners))
        for name in order:
            started = time.perf_counter()
            runners[name](args.steps)
            timings[name].append(args.steps / (time.perf_counter() - started))
    rates = {name: statistics.median(values) for name, values in timings.items()}
    threads = tf.config.threading.get_inter_op_parallelism_threads() or "default"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {threads} inter-op threads, TF {tf.__version__}")
    for name, values in timings.items():
        rounds = ", ".join(f"{value:.0f}" for value in values)
        print(f"{name:>6}: median {rates[name]:7.1f} steps/s = {1000 / rates[name]:.2f} ms/step  (rounds: {rounds})")
    result = {
        "tfkit_steps_per_s": round(rates["tfkit"], 1),
        "fit_steps_per_s": round(rates["fit"], 1),
        "limit_steps_per_s": round(rates["limit"], 1),
        "ratio_vs_fit": round(rates["tfkit"] / rates["fit"], 3),
        "ratio_vs_limit": round(rates["tfkit"] / rates["limit"], 3),
        "model": args.model,
        "batch": args.batch,
        "steps_per_execution": args.steps_per_execution,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
