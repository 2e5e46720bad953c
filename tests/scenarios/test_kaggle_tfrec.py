"""A competition's data as it comes, trained on without any schema.json: Kaggle ``.tfrec`` files in a read-only
folder, Model Garden features with images of varying size, and a CSV with an image folder."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from conftest import stderr_lines, tfkit_process
from foreign_data import csv_images, jpeg, kaggle_tfrecords

import tfkit.predict
import tfkit.train

pytestmark = pytest.mark.slow

TINY = ["--set", "train.epochs=1", "--set", "train.global_batch_size=16", "--set", "data.eval=null"]


@pytest.fixture
def kaggle_input(tmp_path):
    """``input/train/*.tfrec`` and ``input/test/*.tfrec`` (unlabeled), mounted read-only where root may mount."""
    written = tmp_path / "written"
    kaggle_tfrecords(written)
    kaggle_tfrecords(written, split="test", label_key=None, files=2)
    mounted = tmp_path / "input"
    mounted.mkdir()
    bound = subprocess.run(["mount", "--bind", str(written), str(mounted)], capture_output=True).returncode == 0
    if bound and subprocess.run(["mount", "-o", "remount,ro,bind", str(mounted)], check=False).returncode == 0:
        yield mounted
        subprocess.run(["umount", str(mounted)], check=True)
        return
    if bound:
        subprocess.run(["umount", str(mounted)], check=True)
    mounted.rmdir()
    yield written  # no mount permission: the same data, writable (the read-only aspect needs root)


def test_kaggle_tfrec_files_train_from_the_command_line_without_a_schema(kaggle_input, tmp_path):
    args = [
        "tfkit.train",
        "--workdir",
        "run",
        "--set",
        f"data.train={kaggle_input / 'train' / '*.tfrec'}",
        "--set",
        "data.label=class",
        "--set",
        "data.image_size=[32,32]",
        *TINY,
    ]
    result = tfkit_process(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "inferred the schema of data.train: 80 records in 4 file(s); class int64 [], 3 classes" in result.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert not list(kaggle_input.rglob("schema*.json"))  # nothing was written next to the data


def test_a_negative_label_is_one_line_naming_the_record(tmp_path):
    kaggle_tfrecords(tmp_path, files=1)
    bad = tmp_path / "train" / "01-64x64-2.tfrec"
    with tf.io.TFRecordWriter(str(bad)) as writer:
        for label in (1, -1):
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[_image()])),
                "class": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x"])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    args = ["tfkit.train", "--workdir", "run", "--set", f"data.train={tmp_path / 'train'}", "--set", "data.label=class"]
    result = tfkit_process([*args, "--set", "data.image_size=[32,32]", *TINY], cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = stderr_lines(result)
    assert f"{bad}: record 1: label 'class' is -1, outside [0, num_classes)" in line


def test_model_garden_features_with_images_of_varying_size_train_from_python(tmp_path):
    kaggle_tfrecords(tmp_path, image_key="image/encoded", label_key="image/class/label", size=None)
    config = {
        "data": {
            "train": [str(tmp_path / "train" / "0[01]-*"), str(tmp_path / "train" / "0[23]-*")],
            "features": "image/encoded",
            "label": "image/class/label",
            "image_size": [32, 32],
        },
        "train": {"epochs": 1, "global_batch_size": 16},
    }
    summary = tfkit.train.run(config, workdir=tmp_path / "run")
    assert summary["status"] == "completed"
    test_ids = kaggle_tfrecords(
        tmp_path, image_key="image/encoded", label_key=None, size=None, split="test", files=2, per_file=9, seed=3
    )
    tfkit.predict.run(tmp_path / "run", data=str(tmp_path / "test" / "*.tfrec"), out=tmp_path / "submission.csv")
    with (tmp_path / "submission.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["id"] for row in rows] == test_ids  # every id once, in file and record order
    assert {row["label"] for row in rows} <= {"0", "1", "2"}


def test_a_csv_with_an_image_folder_trains_directly_converts_and_predicts_a_test_csv(tmp_path):
    table = csv_images(tmp_path / "comp")
    images = tmp_path / "comp" / "images"
    config = {
        "data": {"train": str(table), "images": str(images), "id": "image_id", "features": "image", "label": "label"},
        "train": {"epochs": 1, "global_batch_size": 8},
    }
    summary = tfkit.train.run(config, workdir=tmp_path / "run")
    assert summary["status"] == "completed"
    # The test CSV lists ids only, and its images lie in a folder of their own, as many competitions ship them.
    rng = np.random.default_rng(5)
    test_ids = [f"t{index:02d}" for index in rng.permutation(13)]
    for folder, width in (("test_images", 32), ("wider_images", 40)):
        (tmp_path / "comp" / folder).mkdir()
        for identifier in test_ids:
            image = jpeg(rng, height=32, width=width, label=0)
            (tmp_path / "comp" / folder / f"{identifier}.jpg").write_bytes(image)
    (tmp_path / "comp" / "test.csv").write_text("image_id\n" + "".join(f"{name}\n" for name in test_ids))
    predict = ["tfkit.predict", "run", "--data", "comp/test.csv", "--images", "comp/test_images"]
    result = tfkit_process([*predict, "--out", "submission.csv"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    with (tmp_path / "submission.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["image_id"] for row in rows] == test_ids  # the run's data.id, in the CSV's order
    assert {row["label"] for row in rows} <= {"cat", "dog"}  # class names from the training CSV
    # Images of another size than the run trained on (without data.image_size): one line, not a traceback.
    predict[-1] = "comp/wider_images"
    wider = tfkit_process([*predict, "--out", "wider.csv"], cwd=tmp_path)
    assert wider.returncode == 2, wider.stderr[-3000:]
    assert stderr_lines(wider) == [
        "tfkit: error: 'comp/test.csv' holds feature 'image' of shape [32, 40, 3]; the model of 'run' takes "
        "[32, 32, 3]. Resize the data to that shape, or train with data.image_size set, which resizes every split."
    ]
    assert not (tmp_path / "wider.csv").exists()
    # The same flag for evaluate: a labeled CSV whose images lie elsewhere than the run's data.images.
    shutil.copytree(images, tmp_path / "elsewhere")
    evaluate = ["tfkit.evaluate", "run", "--data", "comp/train.csv", "--images", "elsewhere", "--out", "m.json"]
    evaluated = tfkit_process(evaluate, cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads((tmp_path / "m.json").read_text())["records"] == 40
    missing = tfkit_process([*evaluate[:5], "nowhere", "--out", "n.json"], cwd=tmp_path)
    assert stderr_lines(missing) == [
        "tfkit: error: --images received 'nowhere', which is not a folder; expected the folder of the CSV's images."
    ]
    write = ["tfkit.records", "write", str(table), "--images", str(images), "--id", "image_id", "--label", "label"]
    result = tfkit_process([*write, "--out", str(tmp_path / "records")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    schema = json.loads((tmp_path / "records" / "schema.json").read_text())
    assert schema["records"] == 40 and schema["features"]["label"]["classes"] == ["cat", "dog"]
    assert schema["features"]["image_id"]["encoding"] == "string"


def _image() -> bytes:
    return jpeg(np.random.default_rng(0), height=64, width=64, label=0)
