"""Eval sees every record once and gives the same metrics on 1, 2, 4 and 8 replicas, equal to a hand computation."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import free_port, model_file, tfkit_process

import tfkit.evaluate
import tfkit.train
from tfkit import export, records

FEATURES = {
    "image": records.Feature("float32", (4,), "raw"),
    "label": records.Feature("int64", (), "int64", num_classes=3),
}


def rows(count: int, seed: int):
    generator = np.random.default_rng(seed)
    for _ in range(count):
        label = int(generator.integers(3))
        yield {"image": (generator.normal(size=4) + label).astype(np.float32), "label": np.int64(label)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run trained on 200 records, and an 80-record eval split in 10 shards."""
    root = tmp_path_factory.mktemp("exact")
    records.write_split(rows(200, 0), root / "train", split="train", features=FEATURES, num_shards=4)
    records.write_split(rows(80, 1), root / "eval", split="eval", features=FEATURES, num_shards=10)
    model = model_file(root)
    config = {
        "model": f"{model}:flat",
        "data": {"train": str(root / "train"), "eval": str(root / "eval"), "features": "image", "label": "label"},
        "train": {"epochs": 2, "global_batch_size": 64, "steps_per_execution": 2},
        "optimizer": {"base_learning_rate": 0.05},
        "distribute": {"cpu_replicas": 4},  # the run's own evals: 80 records on 4 replicas of 16
    }
    tfkit.train.run(config, workdir=root / "run")
    return root


def reference(root, which="best"):
    """The loss and accuracy computed by hand over the 80 records, with numpy."""
    model, _ = export.restore_model(root / "run", which=which)
    x, y = [], []
    for serialized in tf.data.TFRecordDataset(sorted(str(path) for path in (root / "eval").glob("*.tfrecord"))):
        parsed = tf.io.parse_single_example(
            serialized, {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}
        )
        x.append(tf.io.decode_raw(parsed["image"], tf.float32).numpy())
        y.append(int(parsed["label"]))
    logits = model(np.stack(x)).numpy().astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    labels = np.array(y)
    assert len(labels) == 80
    return {
        "loss": float(-log_probs[np.arange(80), labels].mean()),
        "accuracy": float((logits.argmax(axis=1) == labels).mean()),
    }


@pytest.mark.slow
def test_eval_metrics_are_equal_on_1_2_4_and_8_replicas_and_to_a_hand_computation(trained):
    expected = reference(trained)
    assert 0 < expected["accuracy"] < 1  # a model that is neither all right nor all wrong: the counts matter
    seen = {}
    for replicas in (1, 2, 4):
        result = tfkit.evaluate.run(
            trained / "run",
            data=str(trained / "eval"),
            out=trained / f"metrics-{replicas}.json",
            cpu_replicas=replicas,
        )
        assert result["records"] == 80 and result["replicas"] == replicas
        seen[replicas] = result["metrics"]
    process = tfkit_process(
        [
            "tfkit.evaluate",
            str(trained / "run"),
            "--data",
            str(trained / "eval" / "*.tfrecord"),
            "--out",
            str(trained / "metrics-8.json"),
            "--cpu_replicas",
            "8",
        ],
        cwd=trained,
    )
    assert process.returncode == 0, process.stderr
    assert "tfkit: 80 records of" in process.stdout
    seen[8] = json.loads((trained / "metrics-8.json").read_text())["metrics"]
    for replicas, values in seen.items():
        assert values["loss"] == pytest.approx(expected["loss"], abs=1e-6), replicas
        assert values["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6), replicas


def test_the_training_history_reports_the_eval_of_every_record_on_4_replicas(trained):
    expected = reference(trained, which="last")
    with (trained / "run" / "history.csv").open() as handle:
        last = list(csv.DictReader(handle))[-1]
    assert float(last["val_loss"]) == pytest.approx(expected["loss"], abs=1e-5)
    assert float(last["val_accuracy"]) == pytest.approx(expected["accuracy"], abs=1e-6)


@pytest.mark.slow
def test_eval_metrics_on_2_workers_equal_1_replica_and_a_hand_computation(trained):
    """Two real worker processes (MultiWorkerMirroredStrategy) over the same 80 records in 3 shards of 27, 27 and 26:
    worker 0 reads 53 (a batch of 32 and a partial one of 21), worker 1 reads 27 (one partial batch, then a batch of
    padding to keep step with worker 0), and together they count every record once."""
    expected = reference(trained)  # the same 80 records in another sharding: the same means
    split = trained / "eval-3-shards"
    if not split.exists():
        records.write_split(rows(80, 1), split, split="eval", features=FEATURES, num_shards=3)
    one = tfkit.evaluate.run(trained / "run", data=str(split), out=trained / "one.json", cpu_replicas=1, force=True)
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        command = [
            sys.executable, "-m", "tfkit.evaluate", str(trained / "run"), "--data", str(split),
            "--out", str(trained / "workers.json"), "--force",
        ]  # fmt: skip
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "PYTHONUNBUFFERED": "1"}
        processes.append(
            subprocess.Popen(command, env=env, cwd=trained, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
    written = json.loads((trained / "workers.json").read_text())
    assert (written["records"], written["replicas"]) == (80, 2)
    assert "tfkit: 80 records of" in outputs[0][0] and "records of" not in outputs[1][0]  # only the chief talks
    for name in ("loss", "accuracy"):
        assert written["metrics"][name] == pytest.approx(one["metrics"][name], abs=1e-6), name
        assert written["metrics"][name] == pytest.approx(expected[name], abs=1e-6), name
