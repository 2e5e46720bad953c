"""Inferring the schema of TFRecords tfkit did not write, and the ``schema``/``inspect``/``verify`` commands on them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import tensorflow as tf
from conftest import assert_refused, file_hashes, python_script, tfkit_process
from foreign_data import kaggle_tfrecords

from tfkit.errors import UserError
from tfkit.records import infer


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory) -> Path:
    """``train/`` (4 files of 20 labelled 64x64 JPEGs), ``test/`` (unlabeled), and gzip and Model Garden variants."""
    root = tmp_path_factory.mktemp("kaggle")
    kaggle_tfrecords(root)
    kaggle_tfrecords(root, split="test", label_key=None, files=2)
    kaggle_tfrecords(root / "gzip", compression="GZIP", files=2)
    kaggle_tfrecords(root / "garden", image_key="image/encoded", label_key="image/class/label", size=None, files=2)
    return root


def test_kaggle_features_kinds_sizes_counts_and_classes_are_inferred(kaggle):
    schema = infer.infer_schema(infer.expand(str(kaggle / "train")))
    assert {name: (feature.encoding, feature.shape) for name, feature in schema.features.items()} == {
        "class": ("int64", ()),
        "id": ("string", ()),
        "image": ("jpeg", (64, 64, 3)),
    }
    assert schema.features["class"].num_classes == 3
    assert [shard.records for shard in schema.shards] == [20] * 4 and schema.records == 80
    assert schema.compression is None
    assert [Path(shard.file).name for shard in schema.shards] == [f"{n:02d}-64x64-20.tfrec" for n in range(4)]


def test_an_unlabeled_split_a_glob_and_a_list_of_globs_give_the_files_once_in_order(kaggle):
    test = infer.infer_schema(infer.expand(str(kaggle / "test" / "*.tfrec")))
    assert set(test.features) == {"id", "image"} and test.records == 40
    both = infer.expand([str(kaggle / "train" / "0[01]-*"), str(kaggle / "train" / "*")])
    assert [Path(path).name for path in both] == [f"{n:02d}-64x64-20.tfrec" for n in range(4)]


def test_gzip_is_detected_by_its_magic_bytes(kaggle):
    schema = infer.infer_schema(infer.expand(str(kaggle / "gzip" / "train")))
    assert schema.compression == "GZIP" and schema.records == 40


def test_model_garden_names_and_images_of_varying_size(kaggle):
    schema = infer.infer_schema(infer.expand(str(kaggle / "garden" / "train")))
    assert schema.features["image/encoded"].shape == (-1, -1, 3)
    assert schema.features["image/class/label"].num_classes == 3  # the label, found by the last part of its name


def test_counts_can_come_from_kaggle_names_without_reading_the_records(kaggle, tmp_path):
    copy = tmp_path / "named"
    shutil.copytree(kaggle / "train", copy)
    (copy / "00-64x64-20.tfrec").rename(copy / "00-64x64-999.tfrec")  # the name is believed
    schema = infer.infer_schema(infer.expand(str(copy)), count=False)
    assert [shard.records for shard in schema.shards] == [999, 20, 20, 20]
    assert schema.features["class"].num_classes is None  # left to model.num_classes
    assert infer.count_from_name("train-00000-of-00004.tfrecord") is None  # a shard count, not a record count
    assert infer.count_from_name("00-192x192-798.tfrec") == 798
    assert infer.count_from_name("shard.tfrecords") is None


def test_floats_and_variable_length_lists_are_told_apart(tmp_path):
    path = tmp_path / "mixed.tfrecords"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for index in range(5):
            feature = {
                "score": tf.train.Feature(float_list=tf.train.FloatList(value=[index / 2])),
                "box": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0, 2.0, 3.0, 4.0])),
                "tokens": tf.train.Feature(int64_list=tf.train.Int64List(value=list(range(index)))),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    schema = infer.infer_schema([str(path)])
    assert schema.features["score"].encoding == "float" and schema.features["score"].shape == ()
    assert schema.features["box"].shape == (4,) and schema.features["box"].dtype == "float32"
    assert schema.features["tokens"].encoding == "int64" and schema.features["tokens"].shape == (-1,)


def test_a_label_out_of_range_names_the_file_and_the_record(kaggle):
    with pytest.raises(UserError) as raised:
        infer.infer_schema(infer.expand(str(kaggle / "train")), num_classes=2)
    message = str(raised.value)
    assert "00-64x64-20.tfrec: record " in message and "outside [0, 2)" in message and "\n" not in message


def test_a_file_that_is_not_a_tfrecord_is_named(tmp_path):
    (tmp_path / "notes.bin").write_bytes(b"hello, this is not a record file at all")
    with pytest.raises(UserError, match=r"notes\.bin' is not a TFRecord file"):
        infer.infer_schema(infer.expand(str(tmp_path)))


def test_the_schema_command_writes_an_editable_schema_and_refuses_to_replace_it(kaggle, tmp_path):
    out = tmp_path / "schema.json"
    result = tfkit_process(
        ["tfkit.records", "schema", str(kaggle / "train" / "*.tfrec"), "--out", str(out)], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(out.read_text())
    assert body["records"] == 80 and body["features"]["image"] == {
        "dtype": "uint8",
        "shape": [64, 64, 3],
        "encoding": "jpeg",
    }
    before = file_hashes(out)
    again = tfkit_process(["tfkit.records", "schema", str(kaggle / "train"), "--out", str(out)], cwd=tmp_path)
    assert "exists" in assert_refused(again, before=before, roots=[out])


def test_schema_inspect_and_verify_of_foreign_files_start_without_tensorflow(kaggle, tmp_path):
    script = f"""
import sys
from tfkit.records import command
codes = [command.main(["schema", {str(kaggle / "train")!r}, "--out", "s.json"]),
         command.main(["inspect", {str(kaggle / "train" / "*.tfrec")!r}]),
         command.main(["verify", {str(kaggle / "train")!r}, "--schema", "s.json"])]
print(codes, "tensorflow" in sys.modules)
"""
    result = python_script(script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[0, 0, 0] False"
    assert "80 good records of 80 in 4 shard(s); clean" in result.stdout


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda body: body["shards"][1].update(records=21), "01-64x64-20.tfrec: holds 20 records; the schema"),
        (
            lambda body: body["features"]["image"].update(shape=[32, 32, 3]),
            "record 0: feature 'image' is an image of 64x64",
        ),
        (
            lambda body: body["features"].update(box={"dtype": "int64", "shape": [4], "encoding": "int64"}),
            "feature 'box' is missing",
        ),
        (
            lambda body: body["features"]["id"].update(encoding="int64", dtype="int64"),
            "feature 'id' holds bytes values",
        ),
    ],
    ids=["count", "shape", "missing", "dtype"],
)
def test_every_mismatch_between_a_schema_and_the_data_is_one_line_naming_file_record_and_fix(
    kaggle, tmp_path, edit, words
):
    out = tmp_path / "schema.json"
    assert (
        tfkit_process(["tfkit.records", "schema", str(kaggle / "train"), "--out", str(out)], cwd=tmp_path).returncode
        == 0
    )
    body = json.loads(out.read_text())
    edit(body)
    out.write_text(json.dumps(body))
    before = file_hashes(out, kaggle / "train")
    result = tfkit_process(["tfkit.records", "verify", str(kaggle / "train"), "--schema", str(out)], cwd=tmp_path)
    line = assert_refused(result, before=before, roots=[out, kaggle / "train"])
    assert words in line and ".tfrec" in line and ("schema" in line.split(words)[-1]), line
