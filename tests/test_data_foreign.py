"""Splits of data tfkit did not write: folders, globs and lists of ``.tfrec`` files, inferred schemas in the workdir."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from foreign_data import csv_images, jpeg, kaggle_tfrecords

from tfkit import config as config_lib
from tfkit import data
from tfkit.config import DataConfig
from tfkit.data import splits
from tfkit.errors import UserError


def _read_only(source: Path, target: Path) -> bool:
    """Mounts ``source`` read-only at ``target`` (as root, chmod stops no writes); False where mounting is refused."""
    target.mkdir()
    bind = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if bind.returncode != 0:
        return False
    remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], capture_output=True)
    if remount.returncode != 0:
        subprocess.run(["umount", str(target)], check=False)
        return False
    return True


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory) -> Path:
    """Kaggle-style ``train/`` and unlabeled ``test/`` splits, in a read-only folder where mounting is allowed."""
    root = tmp_path_factory.mktemp("kaggle")
    written = root / "written"
    kaggle_tfrecords(written)
    kaggle_tfrecords(written, split="test", label_key=None, files=2)
    mounted = root / "input"
    if not _read_only(written, mounted):
        yield written  # not root, or no mount permission: the read-only aspect is covered where mounting works
        return
    yield mounted
    subprocess.run(["umount", str(mounted)], check=True)


def _config(**values) -> DataConfig:
    return DataConfig(**{"features": "image", "label": "class", "image_size": (32, 32), **values})


def test_a_read_only_folder_without_a_schema_trains_from_a_schema_kept_in_the_workdir(kaggle, tmp_path, capsys):
    if kaggle.name == "input":  # mounted read-only (see the fixture)
        with pytest.raises(OSError):
            (kaggle / "train" / "probe").write_bytes(b"")
    schema = data.load_schema(str(kaggle / "train"), _config(), workdir=tmp_path / "run")
    saved = tmp_path / "run" / "schema-train.json"
    assert saved.exists() and not (kaggle / "train" / "schema.json").exists()
    assert "inferred the schema of data.train: 80 records in 4 file(s)" in capsys.readouterr().out
    assert schema.features["class"].num_classes == 3 and schema.features["image"].shape == (32, 32, 3)
    # On resume the saved schema is read, not inferred again: an edit to it shows.
    body = json.loads(saved.read_text())
    body["features"]["class"]["num_classes"] = 7
    saved.write_text(json.dumps(body))
    again = data.load_schema(str(kaggle / "train"), _config(), workdir=tmp_path / "run")
    assert again.features["class"].num_classes == 7
    assert "reading the schema of data.train from" in capsys.readouterr().out


def test_the_pipeline_reads_every_foreign_record_once_from_a_list_of_globs(kaggle):
    globs = (str(kaggle / "train" / "0[01]-*.tfrec"), str(kaggle / "train" / "0[23]-*.tfrec"))
    config = _config(shuffle_buffer=0)
    schema = data.load_schema(globs, config)
    make = data.dataset_fn(globs, schema, config, per_replica_batch_size=16, training=False, seed=0, epoch=0)
    batches = list(make(tf.distribute.InputContext()))
    weights = np.concatenate([batch[2].numpy() for batch in batches])
    assert weights.sum() == 80 and batches[0][0].shape == (16, 32, 32, 3) and batches[0][0].dtype == tf.uint8


def test_the_test_split_needs_no_label(kaggle, tmp_path):
    schema = data.load_schema(str(kaggle / "test"), _config(), split="test", workdir=tmp_path)
    assert set(schema.features) == {"id", "image"} and schema.records == 40
    assert (tmp_path / "schema-test.json").exists()
    with pytest.raises(UserError, match=r"config key 'data\.label': received 'class'"):
        data.load_schema(str(kaggle / "test"), _config(), split="eval")


def test_placeholder_labels_in_a_foreign_test_split_are_never_read(tmp_path):
    # Some competitions' test files carry the label with -1 in every record: predictions must not refuse them.
    rng = np.random.default_rng(0)
    for file in range(2):
        with tf.io.TFRecordWriter(str(tmp_path / f"{file:02d}-32x32-5.tfrec")) as writer:
            for record in range(5):
                feature = {
                    "image": tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[jpeg(rng, height=32, width=32, label=0)])
                    ),
                    "class": tf.train.Feature(int64_list=tf.train.Int64List(value=[-1])),
                    "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"t{file}{record}".encode()])),
                }
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    glob = str(tmp_path / "*.tfrec")
    assert data.load_schema(glob, _config(), split="test").records == 10
    with pytest.raises(
        UserError, match=r"00-32x32-5\.tfrec: record 0: label 'class' is -1, outside \[0, num_classes\)"
    ):
        data.load_schema(glob, _config(), split="eval")


def test_a_label_outside_the_configured_classes_names_the_record(kaggle):
    with pytest.raises(UserError) as raised:
        data.load_schema(str(kaggle / "train"), _config(), num_classes=2)
    assert "record" in str(raised.value) and "outside [0, 2)" in str(raised.value)


def test_images_of_varying_size_need_an_image_size(tmp_path):
    kaggle_tfrecords(tmp_path, image_key="image/encoded", label_key="image/class/label", size=None, files=2)
    config = _config(features="image/encoded", label="image/class/label", image_size=())
    with pytest.raises(UserError, match=r"varies in size \(\[-1, -1, 3\]\).*data.image_size"):
        data.load_schema(str(tmp_path / "train"), config)
    schema = data.load_schema(str(tmp_path / "train"), _config(features="image/encoded", label="image/class/label"))
    assert schema.features["image/encoded"].shape == (32, 32, 3)
    assert schema.features["image/class/label"].num_classes == 3


def test_a_declared_shape_the_data_does_not_have_is_one_line_naming_the_record(kaggle, tmp_path):
    data.load_schema(str(kaggle / "train"), _config(), workdir=tmp_path)
    saved = tmp_path / "schema-train.json"
    body = json.loads(saved.read_text())
    body["features"]["image"]["shape"] = [100, 100, 3]
    saved.write_text(json.dumps(body))
    with pytest.raises(UserError) as raised:
        data.load_schema(str(kaggle / "train"), _config(), workdir=tmp_path)
    message = str(raised.value)
    assert "00-64x64-20.tfrec: record 0: feature 'image' is an image of 64x64" in message and "Fix" in message


def test_a_csv_with_an_image_folder_is_a_split_with_class_names_kept(tmp_path):
    table = csv_images(tmp_path / "comp")
    config = DataConfig(features="image", label="label", images=str(tmp_path / "comp" / "images"), id="image_id")
    schema = data.load_schema(str(table), config, workdir=tmp_path / "run")
    assert schema.records == 40 and schema.features["label"].classes == ("cat", "dog")
    assert schema.features["label"].num_classes == 2 and schema.features["image"].shape == (32, 32, 3)
    assert all(Path(shard.file).is_absolute() for shard in schema.shards)
    with pytest.raises(UserError, match=r"data\.images"):
        data.load_schema(str(table), DataConfig(features="image", label="label"))


def test_the_inferred_schema_path_is_per_split():
    assert splits.inferred_schema_path("runs/a", "eval") == Path("runs/a/schema-eval.json")


def test_counts_from_kaggle_names_need_the_number_of_classes_in_the_config(kaggle):
    base = ["train.global_batch_size=8", "data.count_records=false", f"data.train={kaggle / 'train'}"]
    with pytest.raises(UserError, match=r"'data\.count_records' is false and 'model\.num_classes' is not set"):
        config_lib.load(None, overrides=base)
    config = config_lib.load(None, overrides=[*base, "model.num_classes=3"])
    schema = data.load_schema(str(kaggle / "train"), dataclasses.replace(config.data, label="class", image_size=(8, 8)))
    assert [shard.records for shard in schema.shards] == [20] * 4  # from the names: -20.tfrec
