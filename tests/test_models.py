from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import DIGITS_CONFIG, DIGITS_DATA, FLAT_MODEL, model_file, read_scalars

import tfkit.train
from tfkit import export, models, records
from tfkit.config import ModelConfig
from tfkit.errors import UserError
from tfkit.models.backbones import BackbonePreprocessing


def test_weights_from_a_local_file_start_where_they_left_off(tmp_path):
    tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "trained", overrides=["train.epochs=6"])
    model, _ = export.restore_model(tmp_path / "trained")
    weights = tmp_path / "digits.weights.h5"
    model.save_weights(weights)
    overrides = ["train.epochs=1", "train.steps_per_execution=1"]
    fresh = tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "fresh", overrides=overrides)
    loaded = tfkit.train.run(
        DIGITS_CONFIG, workdir=tmp_path / "loaded", overrides=[*overrides, f"model.weights={weights}"]
    )
    first_fresh = read_scalars(tmp_path / "fresh" / "logs" / "train", "loss")[1]
    first_loaded = read_scalars(tmp_path / "loaded" / "logs" / "train", "loss")[1]
    assert first_fresh > 2.0 and first_loaded < 1.0  # a fresh model is at chance; the loaded one is not
    assert loaded["metrics"]["accuracy"] > fresh["metrics"]["accuracy"]


def test_a_model_from_a_module_path_and_xla_compilation(tmp_path):
    summary = tfkit.train.run(
        DIGITS_CONFIG,
        workdir=tmp_path / "run",
        overrides=["model=tfkit.models:digits_cnn", "train.jit_compile=true", "train.epochs=3"],
    )
    assert summary["metrics"]["accuracy"] > 0.5


@pytest.mark.slow
def test_a_keras_application_by_name_trains(tmp_path):
    rng = np.random.default_rng(0)
    features = {
        "image": records.Feature(dtype="float32", shape=(32, 32, 3)),
        "label": records.Feature(dtype="int64", shape=(), encoding="int64", num_classes=3),
    }
    for split, count in (("train", 96), ("eval", 32)):
        rows = ({"image": rng.uniform(0, 255, (32, 32, 3)), "label": rng.integers(0, 3)} for _ in range(count))
        records.write_split(rows, tmp_path / split, split=split, features=features, num_shards=2)
    summary = tfkit.train.run(
        {
            "name": "mobilenet",
            "model": "MobileNetV3Small",
            "data": {"train": str(tmp_path / "train"), "eval": str(tmp_path / "eval")},
            "train": {"epochs": 1, "global_batch_size": 16, "steps_per_execution": 3},
        },
        workdir=tmp_path / "run",
    )
    assert (summary["status"], summary["steps"]) == ("completed", 6)
    assert np.isfinite(summary["metrics"]["loss"])


def notop(folder, name, **options):
    """A randomly initialised notop backbone saved as a Keras .weights.h5 file, since nothing can be downloaded."""
    backbone = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3), **options)
    path = folder / name
    backbone.save_weights(path)
    return backbone, path


def test_a_backbone_loads_exactly_the_weights_of_a_local_notop_file_and_gets_tfkits_head(tmp_path):
    saved, path = notop(tmp_path, "notop.weights.h5")
    config = ModelConfig(backbone="MobileNetV3Small", backbone_weights=str(path), head_pooling="max", head_dropout=0.3)
    model = models.build(config, input_shape=(32, 32, 3), num_classes=5)
    backbone = models.backbone_of(model)
    assert len(backbone.weights) == len(saved.weights) > 100
    for mine, theirs in zip(backbone.weights, saved.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())  # BatchNorm statistics too
    names = [layer.name for layer in model.layers]
    assert names[-3:] == ["head_pooling", "head_dropout", "logits"]
    assert isinstance(model.get_layer("head_pooling"), keras.layers.GlobalMaxPooling2D)
    outputs = model(np.zeros((2, 32, 32, 3), np.float32))
    assert (tuple(outputs.shape), outputs.dtype) == ((2, 5), "float32")


def test_a_missing_or_mismatched_weights_file_is_one_line_naming_the_layers(tmp_path):
    _, other = notop(tmp_path, "narrow.weights.h5", alpha=0.75)
    config = ModelConfig(backbone="MobileNetV3Small", backbone_weights=str(other))
    with pytest.raises(UserError) as raised:
        models.build(config, input_shape=(32, 32, 3), num_classes=5)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"config key 'model.backbone_weights': '{other}' does not match model 'MobileNetV3Small'")
    assert "expanded_conv_3_project" in message  # the first layer whose shapes differ
    missing = ModelConfig(backbone="MobileNetV3Small", backbone_weights=str(tmp_path / "absent.h5"))
    with pytest.raises(UserError, match=r"'model.backbone_weights': '.*absent.h5' does not exist; expected a local"):
        models.build(missing, input_shape=(32, 32, 3), num_classes=5)


def test_the_backbones_own_preprocessing_runs_inside_the_model():
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    resnet = BackbonePreprocessing("resnet")(images)
    np.testing.assert_allclose(resnet, keras.applications.resnet.preprocess_input(images.copy()), rtol=1e-6)
    # EfficientNetV2 rescales inside the network: its preprocess_input passes pixels through.
    np.testing.assert_array_equal(BackbonePreprocessing("efficientnet_v2")(images), images)
    restored = BackbonePreprocessing.from_config(BackbonePreprocessing("resnet").get_config())
    assert restored.family == "resnet"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def flat(:\n", r"'.*user_model.py:flat' does not parse: invalid syntax \(.*user_model.py, line 1\)"),
        ("import keras\nraise RuntimeError('no')\n", r"importing .* raised RuntimeError: no \(user_model.py, line 2\)"),
        ("def flat(shape):\n    return None\n", r"takes \(shape\); expected a function called as f\(\*, input_shape"),
        (
            "def flat(*, input_shape, num_classes):\n    return [][0]\n",
            r"raised IndexError while building for input \(8, 8, 1\) and 10 classes: list index out of range "
            r"\(user_model.py, line 2\)",
        ),
        (FLAT_MODEL.replace("Dense(num_classes)", "Dense(4)"), r"outputs 4 values per example .* expected 10"),
    ],
    ids=["syntax-error", "import-raises", "other-arguments", "build-raises", "wrong-width"],
)
def test_a_broken_user_model_is_one_user_error_naming_the_file_and_line(tmp_path, source, message):
    spec = f"{model_file(tmp_path, source)}:flat"
    with pytest.raises(UserError, match=message):
        models.build(ModelConfig(name=spec), input_shape=(8, 8, 1), num_classes=10)


def test_the_bundled_digits_are_uint8_on_the_0_255_scale_and_digits_cnn_rescales_them_itself():
    # As decoded JPEG or PNG images are: the model, not the data, brings pixels to [0, 1], as unet_small does.
    assert records.read_schema(DIGITS_DATA / "train").features["image"] == records.Feature("uint8", (8, 8, 1), "raw")
    pixels = np.concatenate(
        [
            np.frombuffer(records.parse(serialized)["image"][0], np.uint8)
            for path in sorted((DIGITS_DATA / "train").glob("*.tfrecord"))
            for serialized in records.read_records(str(path), None)
        ]
    )
    assert pixels.min() == 0 and pixels.max() == 255
    assert set(np.unique(pixels)) <= {round(v * 255 / 16) for v in range(17)}  # scikit-learn's 0..16, rescaled
    model = models.build(ModelConfig(name="digits_cnn"), input_shape=(8, 8, 1), num_classes=10)
    first = model.layers[1]  # after the input
    assert isinstance(first, keras.layers.Rescaling) and first.scale == pytest.approx(1 / 255)
