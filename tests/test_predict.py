"""python -m tfkit.predict: every id once, in file order, the run's own preprocessing, averaged runs and views."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_refused, file_hashes, model_file, stderr_lines, tfkit_process

import tfkit.predict
import tfkit.train
from tfkit import export, records

CLASSES = ("cat", "dog", "fox")
IMAGE = records.Feature("float32", (4, 4, 1), "raw")
TRAIN = {
    "image": IMAGE,
    "label": records.Feature("int64", (), "int64", num_classes=3, classes=CLASSES),
    "id": records.Feature("string", (), "string"),
}
TEST = {"image": IMAGE, "id": records.Feature("string", (), "string")}  # unlabeled, as a competition's test split


def rows(count, *, seed, labeled=True):
    generator = np.random.default_rng(seed)
    for index in range(count):
        label = int(generator.integers(3))
        image = generator.normal(size=(4, 4, 1)).astype(np.float32)
        image[:, : label + 1] += 2.0  # left-right asymmetric, so a mirror changes the prediction
        row = {"image": image, "id": f"rec-{seed}-{index:03d}".encode()}
        yield {**row, "label": np.int64(label)} if labeled else row


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs (seeds 0 and 1) and an unlabeled 37-record test split in 5 shards."""
    root = tmp_path_factory.mktemp("predict")
    records.write_split(rows(192, seed=0), root / "train", split="train", features=TRAIN, num_shards=4)
    records.write_split(rows(37, seed=9, labeled=False), root / "test", split="test", features=TEST, num_shards=5)
    config = {
        "model": f"{model_file(root)}:flat",
        "data": {"train": str(root / "train"), "features": "image", "label": "label"},
        "train": {"epochs": 1, "global_batch_size": 32, "steps_per_execution": 3},
        "optimizer": {"base_learning_rate": 0.05},
    }
    for seed in (0, 1):
        tfkit.train.run({**config, "seed": seed}, workdir=root / f"run{seed}")
    return root


def read_test_split(root):
    """The test split's images and ids in file order, read with plain TensorFlow."""
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "id": tf.io.FixedLenFeature([], tf.string)}
    images, ids = [], []
    for serialized in tf.data.TFRecordDataset(sorted(str(path) for path in (root / "test").glob("*.tfrecord"))):
        parsed = tf.io.parse_single_example(serialized, spec)
        images.append(tf.io.decode_raw(parsed["image"], tf.float32).numpy().reshape(4, 4, 1))
        ids.append(parsed["id"].numpy().decode())
    return np.stack(images), ids


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def probabilities(root, run, images):
    model, _ = export.restore_model(root / run)
    return softmax(model(images).numpy().astype(np.float64))


def read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


@pytest.mark.slow
def test_the_cli_writes_every_id_once_in_file_order_with_class_names_on_any_number_of_replicas(runs):
    images, ids = read_test_split(runs)
    expected = [CLASSES[index] for index in probabilities(runs, "run0", images).argmax(axis=1)]
    for replicas in ("1", "4"):
        out = runs / f"submission-{replicas}.csv"
        result = tfkit_process(
            ["tfkit.predict", "run0", "--data", "test", "--out", out.name, "--cpu_replicas", replicas], cwd=runs
        )
        assert result.returncode == 0, result.stderr
        assert read_csv(out) == [
            ["id", "label"],
            *([identifier, label] for identifier, label in zip(ids, expected, strict=True)),
        ]


def test_probabilities_of_several_runs_and_flipped_views_are_averaged(runs):
    images, ids = read_test_split(runs)
    views = [images, images[:, :, ::-1]]
    expected = np.mean([probabilities(runs, run, view) for run in ("run0", "run1") for view in views], axis=0)
    out = tfkit.predict.run(
        [runs / "run0", runs / "run1"],
        data=str(runs / "test" / "*.tfrecord"),
        out=runs / "probs.csv",
        output="probs",
        tta="flip",
        cpu_replicas=2,
        progress=False,
    )
    table = read_csv(out)
    assert table[0] == ["id", *CLASSES]
    assert [row[0] for row in table[1:]] == ids
    np.testing.assert_allclose(np.array([row[1:] for row in table[1:]], float), expected, atol=1e-5)


def test_like_takes_the_header_and_the_order_of_the_sample_submission(runs):
    _, ids = read_test_split(runs)
    sample = runs / "sample_submission.csv"
    sample.write_text("image_id,species\n" + "".join(f"{identifier},cat\n" for identifier in reversed(ids)))
    out = tfkit.predict.run(runs / "run0", data=str(runs / "test"), out=runs / "like.csv", like=sample, progress=False)
    table = read_csv(out)
    assert table[0] == ["image_id", "species"]
    assert [row[0] for row in table[1:]] == list(reversed(ids))


def test_raw_outputs_go_to_a_npy_in_record_order(runs):
    images, _ = read_test_split(runs)
    model, _ = export.restore_model(runs / "run0")
    out = tfkit.predict.run(runs / "run0", data=str(runs / "test"), out=runs / "raw.npy", output="raw", progress=False)
    np.testing.assert_allclose(np.load(out), model(images).numpy(), atol=1e-5)


@pytest.mark.slow
def test_an_existing_out_is_refused_without_force_and_left_byte_identical(runs):
    out = runs / "kept.csv"
    out.write_text("mine\n")
    before = file_hashes(runs)
    result = tfkit_process(["tfkit.predict", "run0", "--data", "test", "--out", "kept.csv"], cwd=runs)
    assert_refused(result, before=before, roots=[runs])
    assert "already exists" in stderr_lines(result)[0] and "--force" in stderr_lines(result)[0]


@pytest.mark.slow
def test_an_id_feature_that_does_not_exist_is_one_line_naming_the_features(runs):
    result = tfkit_process(
        ["tfkit.predict", "run0", "--data", "test", "--out", "never.csv", "--id", "image_id"], cwd=runs
    )
    assert result.returncode == 2
    (line,) = stderr_lines(result)
    assert "--id received 'image_id', which is not a feature of 'test'; expected one of id, image" in line
    assert not (runs / "never.csv").exists()
