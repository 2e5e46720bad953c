"""Encoded images in the pipeline: decoded record by record, then batched, with the batched path's results."""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from conftest import model_file

from tfkit import config as config_lib
from tfkit import data, records, recovery
from tfkit.data import checks
from tfkit.data.decode import decodes_images, parser

COUNT = 45
SHIFT = """
import tensorflow as tf

def shift(x, y, seed):
    return tf.cast(x, tf.float32) + tf.cast(seed[0] % 7 + seed[1] % 5, tf.float32) / 16.0, y
"""


@pytest.fixture
def pictures(tmp_path):
    """45 PNGs of varying size in 4 shards, each one grey level: its id, which is also its label."""
    features = {
        "image": records.Feature("uint8", (-1, -1, 3), "png"),
        "label": records.Feature("int64", (), "int64", num_classes=COUNT),
    }

    def rows():
        for index in range(COUNT):
            pixels = np.full((5 + index % 7, 9 + index % 4, 3), index, np.uint8)
            yield {"image": tf.io.encode_png(pixels).numpy(), "label": np.int64(index)}

    schema = records.write_split(rows(), tmp_path / "split", split="train", features=features, num_shards=4)
    return str(tmp_path / "split"), schema, model_file(tmp_path, SHIFT, name="augment.py")


def pipeline(pictures, *, training, pipelines=1, index=0, skip=0, augment=False):
    folder, schema, path = pictures
    config = config_lib.DataConfig(
        train=folder, image_size=(6, 6), shuffle_buffer=16, augment=f"{path}:shift" if augment else None
    )
    make = data.dataset_fn(
        folder, schema, config, per_replica_batch_size=8, training=training, seed=3, epoch=1, skip_batches=skip
    )
    context = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=index)
    return [tuple(part.numpy() for part in batch) for batch in make(context)]


@pytest.mark.parametrize("pipelines", [1, 2, 3])
def test_eval_decodes_every_image_once_in_file_order_in_static_batches_padded_with_zero_weight(pictures, pipelines):
    folder, schema, _ = pictures
    seen = []
    for index in range(pipelines):
        batches = pipeline(pictures, training=False, pipelines=pipelines, index=index)
        assert {x.shape for x, _, _ in batches} == {(8, 6, 6, 3)}
        labels = [int(y) for _, labels, weights in batches for y, w in zip(labels, weights, strict=True) if w > 0]
        for x, y, weights in batches:
            kept = weights > 0
            np.testing.assert_array_equal(x[kept], np.broadcast_to(y[kept, None, None, None], x[kept].shape))
            assert (x[~kept] == 0).all() and set(weights.tolist()) <= {0.0, 1.0}
        files = schema.files(folder)[index::pipelines]
        in_files = [int(y) for file in files for y in _labels_of(file)]
        assert labels == in_files  # the order of the files, record by record
        seen += labels
    assert collections.Counter(seen) == collections.Counter(range(COUNT))


def _labels_of(file: str) -> list[int]:
    spec = {"label": tf.io.FixedLenFeature([], tf.int64)}
    return [int(tf.io.parse_single_example(record, spec)["label"]) for record in tf.data.TFRecordDataset(file)]


def test_training_resumed_at_batch_k_yields_the_same_decoded_and_augmented_batches(pictures):
    whole = pipeline(pictures, training=True, augment=True)
    resumed = pipeline(pictures, training=True, augment=True, skip=2)
    assert len(whole) == COUNT // 8 and len(resumed) == len(whole) - 2
    for (x, y, w), (x_again, y_again, w_again) in zip(whole[2:], resumed, strict=True):
        np.testing.assert_array_equal(x, x_again)
        np.testing.assert_array_equal(y, y_again)
        np.testing.assert_array_equal(w, w_again)
    assert whole[0][0].dtype == np.float32 and whole[0][0].shape == (8, 6, 6, 3)
    shifts = {float(np.unique(x - np.floor(x))[0]) for x, _, _ in whole}
    assert len(shifts) > 1  # each batch's seed differs, so the augmentation is there to compare


def test_record_by_record_decoding_gives_each_image_its_own_pixels_resized(pictures):
    # Each image is one grey level, its label: resized to 6x6 it must stay that level exactly, label and weight 1.
    folder, schema, _ = pictures
    one = parser(schema, features="image", label="label", image_size=(6, 6), per_record=True)
    seen = []
    for serialized in tf.data.TFRecordDataset(schema.files(folder)):
        x, y, weight = one(serialized)
        np.testing.assert_array_equal(x.numpy(), np.full((6, 6, 3), int(y), np.uint8))
        assert x.dtype == tf.uint8 and float(weight) == 1.0
        seen.append(int(y))
    assert sorted(seen) == list(range(COUNT))


def test_a_batch_of_encoded_images_is_never_decoded_whole(pictures):
    _, schema, _ = pictures
    with pytest.raises(ValueError, match="decode them with decode_example"):
        data.decode(tf.constant([b""]), schema.features["image"], batch=1)


def test_only_encoded_images_are_decoded_record_by_record(pictures):
    _, schema, _ = pictures
    assert decodes_images(schema, ("image", "label", None))
    assert not decodes_images(schema, ("label", None))


@pytest.mark.parametrize(("training", "augment"), [(False, False), (True, False), (True, True)])
def test_an_image_label_out_of_range_stops_the_reader_with_the_line_the_trainer_maps(pictures, training, augment):
    # Records decoded one by one are checked once a batch; the reader must still stop, in every mode.
    folder, schema, path = pictures
    label = dataclasses.replace(schema.features["label"], num_classes=10)  # labels 10 to 44 lie outside
    narrowed = dataclasses.replace(schema, features={**schema.features, "label": label})
    with pytest.raises(tf.errors.InvalidArgumentError, match=checks.LABEL_ERROR_PREFIX) as raised:
        pipeline((folder, narrowed, path), training=training, augment=augment)
    assert str(recovery.label_error(raised.value)) == (
        "a label lies outside [0, 10); expected class numbers 0 to 9. Fix the labels, or set model.num_classes."
    )
