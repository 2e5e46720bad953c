"""Regenerates the bundled digits TFRecords from scikit-learn's 8x8 digits (1,797 real images, 10 classes).

Only this script needs scikit-learn (``pip install 'tfkit[digits]'``). Run from the repository root:

    python tfrecords/make_digits.py --out tfrecords/digits

The split is fixed: a seeded permutation, the first 360 images for eval and the remaining 1,437 for train. Pixels
are scaled from 0..16 to the 0-255 scale (``round(v * 255 / 16)``) and stored as uint8 raw bytes of shape (8, 8, 1),
as decoded JPEG or PNG images are: models see the same range as on users' own images (``digits_cnn`` rescales by
1/255 itself), and each image takes 64 bytes.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

EVAL_SIZE = 360
TRAIN_SHARDS = 8
EVAL_SHARDS = 2


def main() -> None:
    """Writes ``OUT/train`` and ``OUT/eval``."""
    from sklearn.datasets import load_digits

    from tfkit import records

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "digits"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    digits = load_digits()
    images = np.round(digits.images * 255 / 16).astype(np.uint8)[..., None]  # 0..16 -> 0..255
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(args.seed).permutation(len(labels))
    splits = {"eval": (order[:EVAL_SIZE], EVAL_SHARDS), "train": (order[EVAL_SIZE:], TRAIN_SHARDS)}
    features = {
        "image": records.Feature(dtype="uint8", shape=(8, 8, 1), encoding="raw"),
        "label": records.Feature(dtype="int64", shape=(), encoding="int64", num_classes=10),
    }
    for split, (indices, shards) in splits.items():
        out = Path(args.out) / split
        shutil.rmtree(out, ignore_errors=True)
        schema = records.write_split(
            ({"image": images[i], "label": labels[i]} for i in indices),
            out,
            split=split,
            features=features,
            num_shards=shards,
        )
        print(f"{out}: {schema.records} records in {len(schema.shards)} shards")


if __name__ == "__main__":
    main()
