from __future__ import annotations

import tarfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import DIGITS_CONFIG, DIGITS_DATA, stderr_lines, tfkit_process

import tfkit.train
from tfkit import export, records
from tfkit.errors import UserError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("export") / "run"
    tfkit.train.run(DIGITS_CONFIG, workdir=workdir, overrides=["train.epochs=3"])
    return workdir


def eval_batch():
    schema = records.read_schema(DIGITS_DATA / "eval")
    dataset = tf.data.TFRecordDataset(schema.files(DIGITS_DATA / "eval")).batch(64).take(1)
    (serialized,) = list(dataset)
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}
    parsed = tf.io.parse_example(serialized, spec)
    pixels = tf.reshape(tf.io.decode_raw(parsed["image"], tf.uint8), [-1, 8, 8, 1])  # 0-255, as stored
    return tf.cast(pixels, tf.float32), parsed["label"].numpy()  # the exported signature takes float32


def test_exported_models_predict_exactly_as_the_restored_checkpoint(trained, tmp_path):
    images, labels = eval_batch()
    model, path = export.restore_model(trained, which="best")
    assert path.startswith(str(trained / "checkpoints" / "best"))
    expected = model(images).numpy()
    assert (expected.argmax(axis=1) == labels).mean() > 0.5  # the trained weights, not a fresh model
    keras_file = export.export(trained, tmp_path / "model.keras")
    np.testing.assert_allclose(keras.models.load_model(keras_file)(images).numpy(), expected, rtol=0, atol=1e-6)
    saved = export.export(trained, tmp_path / "saved")
    served = tf.saved_model.load(str(saved))
    np.testing.assert_allclose(served.serve(images).numpy(), expected, rtol=0, atol=1e-6)


def test_the_archive_holds_the_model_and_logs_under_relative_paths(trained, tmp_path):
    archive = export.export(trained, tmp_path / "run.tar.gz", which="last")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert {"model.keras", "config.yaml", "history.csv", "summary.json", "logs"} <= set(names)
    assert any(name.startswith("logs/train/events.out.tfevents") for name in names)
    assert not any(name.startswith("/") or ".." in name.split("/") for name in names)


def test_exporting_a_folder_without_a_run_exits_2_with_one_line(tmp_path):
    with pytest.raises(UserError, match="holds no tfkit run with checkpoints"):
        export.restore_model(tmp_path)
    result = tfkit_process(["tfkit.export", str(tmp_path), "--out", "m.keras"], cwd=tmp_path)
    assert result.returncode == 2
    assert len(stderr_lines(result)) == 1


def test_an_existing_output_is_replaced_only_with_force_and_only_whole(trained, tmp_path):
    images, _ = eval_batch()
    for name in ("model.keras", "saved", "run.tar.gz"):
        target = tmp_path / name
        target.write_text("an earlier output\n")
        with pytest.raises(UserError, match=f"--out '{target}' exists; expected a new path, or --force"):
            export.export(trained, target)
        assert target.read_text() == "an earlier output\n"
        export.export(trained, target, force=True)
    assert keras.models.load_model(tmp_path / "model.keras")(images).shape == (64, 10)
    assert tf.saved_model.load(str(tmp_path / "saved")).serve(images).shape == (64, 10)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.keras", "run.tar.gz", "saved"]


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("m.onnx", r"extension \.onnx export cannot write; expected \.keras, \.tar\.gz, \.tgz, or a name without"),
        ("m.h5", r"extension \.h5 export cannot write"),
        ("{run}", "is the run folder or inside it"),
        ("{run}/checkpoints/m.keras", "is the run folder or inside it"),
    ],
)
def test_an_output_that_would_change_the_run_or_lose_its_format_is_refused(trained, tmp_path, out, message):
    with pytest.raises(UserError, match=message):
        export.check_output(trained, out.format(run=trained) if "{" in out else tmp_path / out)
