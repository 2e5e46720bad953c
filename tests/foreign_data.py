"""Data tfkit did not write, built with plain TensorFlow as competitions ship it (for the foreign-data tests).

Kaggle's TPU competitions: ``train/00-64x64-20.tfrec`` files with ``image`` (JPEG bytes), ``class`` (int64) and ``id``
(bytes), and an unlabeled ``test/`` split. Model Garden's: ``image/encoded`` and ``image/class/label``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import tensorflow as tf


def jpeg(rng: np.random.Generator, *, height: int, width: int, label: int) -> bytes:
    """A JPEG whose brightness tells its class (so a model can learn it quickly)."""
    base = 40 + 60 * label
    pixels = np.clip(rng.normal(base, 10, size=(height, width, 3)), 0, 255).astype(np.uint8)
    return tf.io.encode_jpeg(pixels, quality=95).numpy()


def kaggle_tfrecords(
    root: Path,
    *,
    files: int = 4,
    per_file: int = 20,
    classes: int = 3,
    size: tuple[int, int] | None = (64, 64),
    image_key: str = "image",
    label_key: str | None = "class",
    id_key: str = "id",
    split: str = "train",
    compression: str = "",
    seed: int = 0,
) -> list[str]:
    """Writes ``root/SPLIT/NN-HxW-COUNT.tfrec`` files; ``size`` None gives images of varying size.

    Returns:
        The ids written, in file and record order.
    """
    rng = np.random.default_rng(seed)
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    shape = f"{size[0]}x{size[1]}" if size else "any"
    options = tf.io.TFRecordOptions(compression_type=compression)
    for file in range(files):
        with tf.io.TFRecordWriter(str(folder / f"{file:02d}-{shape}-{per_file}.tfrec"), options) as writer:
            for record in range(per_file):
                label = int(rng.integers(classes))
                height, width = size or (int(rng.integers(40, 90)), int(rng.integers(40, 90)))
                identifier = f"{split}{file:02d}{record:03d}"
                ids.append(identifier)
                feature = {
                    image_key: _bytes(jpeg(rng, height=height, width=width, label=label)),
                    id_key: _bytes(identifier.encode()),
                }
                if label_key is not None:
                    feature[label_key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))
                example = tf.train.Example(features=tf.train.Features(feature=feature))
                writer.write(example.SerializeToString())
    return ids


def csv_images(root: Path, *, rows: int = 40, names: tuple[str, ...] = ("cat", "dog"), seed: int = 0) -> Path:
    """Writes ``root/train.csv`` (``image_id,label`` with class names) and ``root/images/ID.jpg``; returns the CSV."""
    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    path = root / "train.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "label"])
        for row in range(rows):
            label = int(rng.integers(len(names)))
            (images / f"img{row:03d}.jpg").write_bytes(jpeg(rng, height=32, width=32, label=label))
            writer.writerow([f"img{row:03d}", names[label]])
    return path


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
