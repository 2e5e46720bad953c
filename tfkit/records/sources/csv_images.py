"""A CSV plus an image folder as a source (``train.csv`` with ``image_id,label`` and ``images/``), images kept encoded.

Many competitions ship their data this way. Each row names an image by its id column, as a file name with or
without its extension; class names given as strings become ids in sorted order, and the names are kept in the
schema's ``classes``. Integer labels are kept as they are.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tfkit.errors import UserError
from tfkit.records.images import image_shape
from tfkit.records.schema import Feature
from tfkit.records.sources.image_folder import SUFFIXES


class CSVImageSource:
    """Rows of a CSV, each an image file in ``images`` (named by ``id_column``) and, optionally, a label.

    Features: ``image`` (``jpeg`` or ``png``; -1 where sizes vary), the id column (bytes) and the label column
    (int64, with the class names when they are strings).
    """

    parallel = True

    def __init__(self, path: str, *, images: str, id_column: str = "id", label_column: str | None = None) -> None:
        self.path = path
        self.images = images
        self.id_column = id_column
        self.label_column = label_column
        if not os.path.isdir(images):
            raise UserError(f"image folder '{images}' does not exist; expected the folder the CSV's images are in.")
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            rows = list(reader)
        for option, column in (("--id", id_column), ("--label", label_column)):
            if column is not None and column not in columns:
                raise UserError(
                    f"{option} received '{column}', which is not a column of '{path}'; expected one of "
                    f"{', '.join(columns)}."
                )
        if not rows:
            raise UserError(f"CSV '{path}' has no rows; expected one row per image.")
        available = {entry.name: entry.name for entry in os.scandir(images) if entry.is_file()}
        stems = {Path(name).stem: name for name in available if Path(name).suffix.lower() in SUFFIXES}
        self.files: list[str] = []
        for number, row in enumerate(rows, start=2):  # line 1 is the header
            name = row[id_column]
            found = available.get(name) or stems.get(name)
            if found is None:
                raise UserError(
                    f"{path}: line {number}: image '{name}' is not in '{images}'; expected a file named by the "
                    f"'{id_column}' column (with or without its extension). Check --images and --id."
                )
            self.files.append(os.path.join(images, found))
        self.ids = [row[id_column] for row in rows]
        self.features: dict[str, Feature] = {"image": self._image_feature(), id_column: _string()}
        self.labels: list[int] = []
        if label_column is not None:
            texts = [row[label_column] for row in rows]
            numeric = all(text.strip().lstrip("-").isdigit() for text in texts)
            classes = None if numeric else tuple(sorted(set(texts)))
            index = {name: number for number, name in enumerate(classes or ())}
            self.labels = [int(text) if numeric else index[text] for text in texts]
            self.features[label_column] = Feature(
                dtype="int64",
                shape=(),
                encoding="int64",
                num_classes=max(self.labels) + 1 if numeric else len(index),
                classes=classes,
            )
        self.example_bytes = max(1, sum(os.path.getsize(file) for file in self.files[:256]) // min(256, len(rows)))

    def _image_feature(self) -> Feature:
        kinds = {SUFFIXES[Path(file).suffix.lower()] for file in self.files}
        if len(kinds) > 1:
            raise UserError(
                f"the images of '{self.path}' mix JPEG and PNG files; expected one format. Convert them to one first."
            )
        shapes = {image_shape(file) for file in self.files}
        size = tuple(
            sizes.pop() if len(sizes) == 1 else -1 for sizes in ({s[0] for s in shapes}, {s[1] for s in shapes})
        )
        return Feature(dtype="uint8", shape=(*size, max(s[2] for s in shapes)), encoding=kinds.pop())

    def __len__(self) -> int:
        return len(self.files)

    def describe(self) -> str:
        """The source in words, for messages."""
        return f"CSV '{self.path}' with images in '{self.images}'"

    def read(self, indices: np.ndarray) -> Iterator[dict[str, Any]]:
        """Yields the examples at ``indices``: the image file's bytes, unchanged, its id and its label."""
        for index in indices.tolist():
            example: dict[str, Any] = {"image": Path(self.files[index]).read_bytes()}
            example[self.id_column] = self.ids[index].encode()
            if self.label_column is not None:
                example[self.label_column] = np.int64(self.labels[index])
            yield example


def _string() -> Feature:
    return Feature(dtype="string", shape=(), encoding="string")
