"""The general reader's options, and converting an HDF5 file of EEG windows and training on it end to end."""

from __future__ import annotations

import collections
import json

import h5py
import numpy as np
import pytest
import tensorflow as tf
from conftest import model_file, tfkit_process

from tfkit import config as config_lib
from tfkit import data, records

WINDOW = records.Feature("float32", (129, 200), "raw")


@pytest.fixture
def numbered(tmp_path):
    features = {"image": records.Feature("float32", (2,), "raw"), "label": records.Feature("int64", (), "int64")}
    rows = ({"image": np.array([i, i], np.float32), "label": np.int64(i)} for i in range(60))
    schema = records.write_split(rows, tmp_path / "split", split="train", features=features, num_shards=4)
    return str(tmp_path / "split"), schema


def batches(folder, schema, config, *, training, epoch=0):
    make = data.dataset_fn(folder, schema, config, per_replica_batch_size=6, training=training, seed=0, epoch=epoch)
    return list(make(tf.distribute.InputContext()))


def test_the_augment_function_changes_training_batches_only(numbered, tmp_path):
    folder, schema = numbered
    path = model_file(tmp_path, "def shift(x, y):\n    return x + 1000.0, y\n", name="augment.py")
    config = config_lib.DataConfig(train=folder, augment=f"{path}:shift")
    trained = batches(folder, schema, config, training=True)
    evaluated = batches(folder, schema, config, training=False)
    assert all((x.numpy() >= 1000).all() and (x.numpy()[:, 0] - 1000 == y.numpy()).all() for x, y, _ in trained)
    assert all((x.numpy() < 1000).all() for x, _, _ in evaluated)


def test_the_file_cache_serves_later_epochs_with_every_record_once(numbered, tmp_path):
    folder, schema = numbered
    config = config_lib.DataConfig(train=folder, cache=str(tmp_path / "cache" / "digits"))
    (tmp_path / "cache").mkdir()
    for epoch in (0, 1):
        seen = [int(v) for _, y, _ in batches(folder, schema, config, training=True, epoch=epoch) for v in y.numpy()]
        assert len(seen) == 60 and collections.Counter(seen) == collections.Counter(range(60))
    assert list((tmp_path / "cache").glob("digits-train-0-of-1*.index"))


def test_the_shuffle_buffer_is_bounded_in_bytes():
    schema = records.Schema(split="train", features={"x": WINDOW}, shards=(), records=0)
    config = config_lib.DataConfig(train="x", shuffle_buffer=2048, shuffle_buffer_bytes="10MB")
    assert data.shuffle_examples(schema, config) == 10_000_000 // (129 * 200 * 4)  # 96 windows, not 2048
    small = config_lib.DataConfig(train="x", shuffle_buffer=50, shuffle_buffer_bytes="10MB")
    assert data.shuffle_examples(schema, small) == 50


@pytest.mark.slow
def test_convert_an_hdf5_file_of_eeg_windows_and_train_on_it(outside_repo):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 640)
    x = rng.standard_normal((640, 129, 200)).astype(np.float32)
    x[:, 0, :] += (2 * y[:, None] - 1) * 0.5  # a signal in channel 0
    with h5py.File(outside_repo / "eeg.h5", "w") as handle:
        handle["x"] = x
        handle["y"] = y
    write = ["tfkit.records", "write", "eeg.h5", "--out", "data", "--eval_fraction", "0.2", "--shuffle_seed", "0"]
    written = tfkit_process(write, cwd=outside_repo)
    assert written.returncode == 0, written.stderr
    assert "wrote 128 records in 10 shard(s)" in written.stdout and "wrote 512 records" in written.stdout
    sets = ["data.train=data/train", "data.eval=data/eval", "data.features=x", "data.label=y", "model=mlp"]
    sets += ["train.global_batch_size=32", "train.epochs=4", "name=eeg"]
    args = [item for value in sets for item in ("--set", value)]
    trained = tfkit_process(["tfkit.train", *args], cwd=outside_repo)
    assert trained.returncode == 0, trained.stderr
    summary = json.loads((outside_repo / "runs" / "eeg" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 4 * (512 // 32)
    assert summary["metrics"]["accuracy"] > 0.9
