"""data.augmentations: each preset is seeded, moves masks with images, and MixUp/CutMix make the right soft labels."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import model_file

from tfkit import config as config_lib
from tfkit import data, records
from tfkit.data import presets
from tfkit.errors import UserError

NAMES = ("flip", "random_resized_crop", "rotation", "color_jitter", "mixup", "cutmix")
SEED = tf.constant([7, 3], tf.int32)


def augmented(names, images, labels, seed, *, num_classes=4):
    """The batch after the presets, as the pipeline applies them."""
    built = presets.build(config_lib.DataConfig(augmentations=tuple(names)), num_classes=num_classes)
    assert built is not None
    x, y = built.transform(images, labels, seed)
    x, y, weights = built.mix(x, y, tf.ones([images.shape[0]]), seed)
    return x.numpy(), y.numpy(), weights.numpy()


@pytest.fixture
def batch():
    images = np.random.default_rng(0).integers(0, 256, (16, 12, 10, 3)).astype(np.uint8)
    return tf.constant(images), tf.constant(np.arange(16) % 4, tf.int64)


@pytest.mark.parametrize("name", NAMES)
def test_each_preset_repeats_for_a_seed_differs_across_seeds_and_per_example(name, batch):
    images, labels = batch
    first = augmented([name], images, labels, SEED)
    again = augmented([name], images, labels, SEED)
    other = augmented([name], images, labels, SEED + 1)
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    assert (first[0] != other[0]).any()
    assert first[0].dtype == np.uint8 and first[0].shape == images.shape
    changes = np.abs(first[0].astype(int) - images.numpy().astype(int)).reshape(16, -1).mean(axis=1)
    assert len(np.unique(changes)) > 2  # each example drawn on its own, not the whole batch alike


def test_flip_gives_the_flipped_image_and_moves_a_mask_with_it(batch):
    images, _ = batch
    masks = tf.cast(images[..., 0] > 128, tf.int64)  # a mask of each image's own pixels
    for vertical in (False, True):
        built = presets.build(
            config_lib.DataConfig(augmentations=({"name": "flip", "vertical": vertical},)), num_classes=None
        )
        assert built is not None
        x, y = (tensor.numpy() for tensor in built.transform(images, masks, SEED))
        seen = set()
        for original, out in zip(images.numpy(), x, strict=True):
            candidates = {
                "same": original,
                "left_right": original[:, ::-1],
                "up_down": original[::-1],
                "both": original[::-1, ::-1],
            }
            match = [kind for kind, image in candidates.items() if (image == out).all()]
            assert len(match) == 1
            seen.add(match[0])
        assert seen == ({"same", "left_right", "up_down", "both"} if vertical else {"same", "left_right"})
        assert (y == (x[..., 0] > 128)).all()  # the mask moved exactly as its image


@pytest.mark.parametrize("name", ["random_resized_crop", "rotation"])
def test_crops_and_rotations_move_a_mask_with_its_image(name):
    # Images whose every pixel is 0 or 200: the moved mask (nearest) marks where the moved image is bright.
    mask = np.zeros((8, 16, 16), np.int64)
    mask[:, 4:12, 2:7] = 1
    images = tf.constant(np.repeat(mask[..., None] * 200, 3, axis=-1).astype(np.uint8))
    x, y, _ = augmented([name], images, tf.constant(mask), SEED)
    assert set(np.unique(y)) <= {0, 1} and (y != mask).any()
    agree = ((x[..., 0] > 100) == (y == 1)).mean()
    assert agree > 0.97  # bilinear edges may differ from nearest by a pixel


def test_a_full_crop_of_the_whole_image_returns_it():
    images = tf.constant(np.random.default_rng(1).random((4, 9, 9, 1)), tf.float32)
    spec = {"name": "random_resized_crop", "scale": [1.0, 1.0], "ratio": [1.0, 1.0]}
    x, _, _ = augmented([spec], images, tf.zeros([4], tf.int64), SEED)
    np.testing.assert_allclose(x, images.numpy(), atol=1e-6)


def test_mixup_labels_sum_to_one_and_mix_the_one_hot_labels_by_the_images_weight():
    count = 32
    images = tf.constant(np.arange(count, dtype=np.float32).reshape(count, 1, 1, 1) * np.ones((1, 4, 4, 1)))
    labels = tf.constant(np.arange(count), tf.int64)  # class i for image i, whose pixels are all i
    x, y, weights = augmented([{"name": "mixup", "alpha": 0.4}], images, labels, SEED, num_classes=count)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    # image i became lam * i + (1 - lam) * j; its label lam * one_hot(i) + (1 - lam) * one_hot(j)
    np.testing.assert_allclose(x[:, 0, 0, 0], y @ np.arange(count, dtype=np.float32), rtol=1e-5, atol=1e-4)
    assert ((y > 0).sum(axis=1) <= 2).all() and ((y > 0.01) & (y < 0.99)).any()
    np.testing.assert_allclose(weights, 1.0, rtol=1e-6)


def test_cutmix_labels_weigh_each_image_by_the_share_of_the_area_it_keeps():
    count = 32
    images = tf.constant(np.arange(count, dtype=np.uint8).reshape(count, 1, 1, 1) * np.ones((1, 10, 8, 3), np.uint8))
    labels = tf.constant(np.arange(count), tf.int64)
    x, y, _ = augmented(["cutmix"], images, labels, SEED, num_classes=count)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    for i in range(count):
        kept = (x[i, ..., 0] == i).mean()
        assert y[i, i] == pytest.approx(kept, abs=1e-6)
        pasted = np.unique(x[i, ..., 0][x[i, ..., 0] != i])
        assert len(pasted) <= 1 and all(y[i, j] == pytest.approx(1 - kept, abs=1e-6) for j in pasted)
    assert (y.max(axis=1) < 1).sum() > count // 2  # most examples got a box


def test_colour_jitter_keeps_grey_images_grey_and_integers_in_range():
    images = tf.constant(np.random.default_rng(2).integers(0, 256, (8, 6, 6, 1)).astype(np.uint8))
    spec = {"name": "color_jitter", "brightness": 0.9, "contrast": 0.9, "saturation": 0.9}
    x, _, _ = augmented([spec], images, tf.zeros([8], tf.int64), SEED)
    assert x.dtype == np.uint8 and x.shape == images.shape and (x != images.numpy()).any()


def test_mixing_without_a_number_of_classes_is_refused_in_one_line():
    with pytest.raises(UserError, match="mixup needs the number of classes") as caught:
        presets.build(config_lib.DataConfig(augmentations=("mixup",)), num_classes=None)
    assert "\n" not in str(caught.value)


USER_AUGMENT = """
import tensorflow as tf

def noise(x, y, seed):
    tf.debugging.assert_type(y, tf.int64)  # data.augment sees the labels as stored, before mixing
    return x + tf.random.stateless_uniform(tf.shape(x), seed), y
"""


@pytest.fixture
def split(tmp_path):
    features = {"image": records.Feature("float32", (4, 4, 1), "raw"), "label": records.Feature("int64", (), "int64")}
    rows = ({"image": np.full((4, 4, 1), i, np.float32), "label": np.int64(i % 3)} for i in range(48))
    schema = records.write_split(rows, tmp_path / "split", split="train", features=features, num_shards=4)
    return str(tmp_path / "split"), schema, model_file(tmp_path, USER_AUGMENT, name="augment.py")


def batches(split, *, skip=0, training=True):
    folder, schema, path = split
    config = config_lib.DataConfig(
        train=folder, augment=f"{path}:noise", augmentations=("flip", "rotation", {"name": "mixup", "alpha": 1.0})
    )
    make = data.dataset_fn(
        folder,
        schema,
        config,
        per_replica_batch_size=6,
        training=training,
        seed=0,
        epoch=0,
        skip_batches=skip,
        num_classes=3,
    )
    return [(x.numpy(), y.numpy()) for x, y, _ in make(tf.distribute.InputContext())]


def test_the_pipeline_applies_presets_then_augment_then_mixes_and_a_resume_at_batch_k_repeats(split):
    first = batches(split)
    assert first[0][1].shape == (6, 3) and first[0][1].dtype == np.float32  # soft labels over the 3 classes
    np.testing.assert_allclose(first[0][1].sum(axis=1), 1.0, rtol=1e-6)
    resumed = batches(split, skip=3)
    assert all((a[0] == b[0]).all() and (a[1] == b[1]).all() for a, b in zip(first[3:], resumed, strict=True))
    plain = batches(split, training=False)  # eval and predict are never augmented
    assert plain[0][1].dtype == np.int64 and (plain[0][0] == np.round(plain[0][0])).all()


def test_image_presets_on_a_feature_that_is_not_an_image_are_refused_at_load(tmp_path):
    features = {"signal": records.Feature("float32", (20, 2), "raw"), "label": records.Feature("int64", (), "int64")}
    rows = ({"signal": np.zeros((20, 2), np.float32), "label": np.int64(0)} for _ in range(8))
    records.write_split(rows, tmp_path / "split", split="train", features=features, num_shards=1)
    config = config_lib.DataConfig(train=str(tmp_path / "split"), features="signal", augmentations=("flip",))
    with pytest.raises(UserError, match=r"flip needs images; received feature 'signal' of shape \[20, 2\]") as caught:
        data.load_schema(config.train, config)
    assert "\n" not in str(caught.value)
    mixup = config_lib.DataConfig(train=str(tmp_path / "split"), features="signal", augmentations=("mixup",))
    data.load_schema(mixup.train, mixup)  # mixup blends any feature


def test_mixing_masks_is_refused_at_load_even_with_a_class_loss(tmp_path):
    features = {"image": records.Feature("uint8", (8, 8, 1), "raw"), "mask": records.Feature("int64", (8, 8), "int64")}
    rows = ({"image": np.zeros((8, 8, 1), np.uint8), "mask": np.zeros((8, 8), np.int64)} for _ in range(8))
    records.write_split(rows, tmp_path / "split", split="train", features=features, num_shards=1)
    config = config_lib.DataConfig(train=str(tmp_path / "split"), label="mask", augmentations=("flip", "cutmix"))
    with pytest.raises(UserError, match=r"cutmix mixes class labels; received label 'mask' of shape \[8, 8\]"):
        data.load_schema(config.train, config)
    flips = config_lib.DataConfig(train=str(tmp_path / "split"), label="mask", augmentations=("flip", "rotation"))
    data.load_schema(flips.train, flips)  # geometry moves the mask with its image
