"""data.augmentations at config load: names and arguments checked, mixing refused where labels cannot be soft."""

from __future__ import annotations

import pytest
from conftest import REPO, assert_refused, file_hashes, tfkit_process

from tfkit import config as config_lib
from tfkit.config.augmentations import preset
from tfkit.errors import UserError

BASE = ["data.train=/data/train", "train.per_replica_batch_size=8"]


def load(*overrides):
    return config_lib.load(None, overrides=[*BASE, *overrides])


def test_names_and_mappings_load_with_their_defaults_and_write_back():
    config = load("data.augmentations=[flip, {name: random_resized_crop, scale: [0.5, 1]}, {name: mixup, alpha: 0.4}]")
    assert [preset(spec) for spec in config.data.augmentations] == [
        ("flip", {"horizontal": True, "vertical": False}),
        ("random_resized_crop", {"scale": (0.5, 1), "ratio": (3 / 4, 4 / 3)}),
        ("mixup", {"alpha": 0.4}),
    ]
    assert config_lib.load(None, values=config_lib.to_dict(config)) == config
    assert load().data.augmentations == ()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["data.augmentations=[flop]"], "received 'flop'; expected some of flip, random_resized_crop, rotation"),
        (["data.augmentations=[{name: flip, verticle: true}]"], "flip takes no argument verticle; expected some of"),
        (["data.augmentations=[{name: rotation, degrees: 0}]"], "rotation received degrees=0; expected the largest"),
        (["data.augmentations=[{name: rotation, fill_mode: mirror}]"], "fill_mode='mirror'; expected one of reflect"),
        (["data.augmentations=[{name: random_resized_crop, scale: [0.9, 0.1]}]"], "scale=[0.9, 0.1]; expected [low,"),
        (["data.augmentations=[{name: color_jitter, contrast: 2}]"], "color_jitter received contrast=2; expected a"),
        (["data.augmentations=[{name: mixup, alpha: 0}]"], "mixup received alpha=0; expected a Beta(alpha, alpha)"),
        (["data.augmentations=[{name: flip, horizontal: false}]"], "flip received horizontal=False and vertical=Fa"),
        (["data.augmentations=[cutmix]", "task.loss=mse"], "cutmix makes soft class labels, which task.loss 'mse'"),
        (
            ["data.augmentations=[mixup]", "task.loss=categorical_generalized_cross_entropy"],
            "expected a class loss: sparse_categorical_crossentropy, categorical_crossentropy",
        ),
    ],
)
def test_bad_presets_are_refused_in_one_line(overrides, expected):
    with pytest.raises(UserError) as caught:
        load(*overrides)
    message = str(caught.value)
    assert message.startswith("config key 'data.augmentations': ") and expected in message
    assert "\n" not in message


def test_mixing_works_with_the_soft_label_losses_and_user_code():
    for loss in ("sparse_categorical_crossentropy", "{name: categorical_crossentropy, label_smoothing: 0.1}", "m:f"):
        load("data.augmentations=[mixup, cutmix]", f"task.loss={loss}")


@pytest.mark.slow  # a training process: TensorFlow's import alone takes seconds
def test_mixup_on_the_segmentation_config_is_refused_at_the_cli_and_writes_nothing(tmp_path):
    before = file_hashes(tmp_path)
    result = tfkit_process(
        [
            "tfkit.train",
            "--config",
            str(REPO / "configs" / "shapes_segmentation.yaml"),
            "--set",
            "data.augmentations=[flip, mixup]",
            "--workdir",
            str(tmp_path / "run"),
        ],
        cwd=tmp_path,
    )
    line = assert_refused(result, before=before, roots=[tmp_path])
    assert "mixup makes soft class labels, which task.loss 'binary_crossentropy' does not read" in line
    assert not (tmp_path / "run").exists()
