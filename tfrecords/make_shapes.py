"""Generates the bundled shapes segmentation dataset: circles and rectangles on noise, with their masks.

Seeded and deterministic; needs only numpy. Run from the repository root:

    python tfrecords/make_shapes.py --out tfrecords/shapes

Each example is a 32x32 grey image (uint8) with one to three filled shapes of random brightness on a noisy
background, and a 32x32 mask (uint8, 1 inside any shape). Train and eval use different seeds.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SIZE = 32
SPLITS = {"train": (1200, 8, 1), "eval": (240, 2, 2)}  # examples, shards, seed


def examples(count: int, *, seed: int) -> Iterator[dict[str, np.ndarray]]:
    """Yields ``count`` seeded examples of ``image`` (32, 32, 1) and ``mask`` (32, 32, 1), both uint8."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    for _ in range(count):
        background = rng.uniform(40, 110)
        image = background + rng.normal(0, 18, (SIZE, SIZE))
        mask = np.zeros((SIZE, SIZE), bool)
        for _ in range(rng.integers(1, 4)):
            if rng.random() < 0.5:
                radius = rng.uniform(3, 8)
                center = rng.uniform(radius, SIZE - radius, 2)
                shape = (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius**2
            else:
                height, width = rng.integers(4, 14, 2)
                top, left = rng.integers(0, SIZE - height), rng.integers(0, SIZE - width)
                shape = (rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width)
            image[shape] = rng.uniform(150, 230) + rng.normal(0, 18, int(shape.sum()))
            mask |= shape
        yield {
            "image": np.clip(image, 0, 255).astype(np.uint8)[..., None],
            "mask": mask.astype(np.uint8)[..., None],
        }


def main() -> None:
    """Writes ``OUT/train`` and ``OUT/eval``."""
    from tfkit import records

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "shapes"))
    args = parser.parse_args()
    features = {
        "image": records.Feature(dtype="uint8", shape=(SIZE, SIZE, 1), encoding="raw"),
        "mask": records.Feature(dtype="uint8", shape=(SIZE, SIZE, 1), encoding="raw"),
    }
    for split, (count, shards, seed) in SPLITS.items():
        out = Path(args.out) / split
        shutil.rmtree(out, ignore_errors=True)
        schema = records.write_split(examples(count, seed=seed), out, split=split, features=features, num_shards=shards)
        print(f"{out}: {schema.records} records in {len(schema.shards)} shards")


if __name__ == "__main__":
    main()
