"""Sources that ``tfkit.records.write`` converts: numpy, HDF5, image folders, a CSV of images, tensorflow-datasets.

Each is a ``Source`` (see tfkit.records.sources.source); ``open_source`` picks one for what the command line was given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tfkit.errors import UserError
from tfkit.records.sources.arrays import ArraySource, HDF5Source
from tfkit.records.sources.csv_images import CSVImageSource
from tfkit.records.sources.image_folder import ImageFolderSource
from tfkit.records.sources.source import Source
from tfkit.records.sources.tfds_folder import TFDSSource

__all__ = ["ArraySource", "CSVImageSource", "HDF5Source", "ImageFolderSource", "Source", "TFDSSource", "open_source"]


def open_source(
    paths: Sequence[str],
    *,
    features: Sequence[str] | None = None,
    label: str | None = None,
    tfds_split: str = "train",
    images: str | None = None,
    id_column: str = "id",
) -> Source:
    """Opens what ``python -m tfkit.records write`` was given.

    A ``.csv`` is a table of images: ``images`` names their folder, ``id_column`` the column naming each image
    file, and ``label`` the label column (none for an unlabeled split).

    Raises:
        UserError: A missing path, or one that is no known kind of source.
    """
    for path in paths:
        if not os.path.exists(path):
            raise UserError(f"source '{path}' does not exist; expected a file or folder to convert. Check the path.")
    first = paths[0]
    suffix = Path(first).suffix.lower()
    if all(Path(path).suffix.lower() == ".npy" for path in paths) or (len(paths) == 1 and suffix == ".npz"):
        return ArraySource(paths, names=features, label=label)
    if len(paths) > 1:
        raise UserError(f"received {len(paths)} sources; expected one, or several .npy files.")
    if suffix == ".csv":
        if images is None:
            raise UserError(f"source '{first}' is a CSV; expected --images naming its image folder (and --id, --label)")
        return CSVImageSource(first, images=images, id_column=id_column, label_column=label)
    if images is not None:
        raise UserError(f"--images received '{images}'; it only applies to a CSV source, and '{first}' is not one.")
    if suffix in (".h5", ".hdf5", ".he5", ".nc"):
        return HDF5Source(first, names=features, label=label)
    if os.path.isdir(first):
        if os.path.exists(os.path.join(first, "dataset_info.json")):
            return TFDSSource(first, split=tfds_split, label=label, names=features)
        return ImageFolderSource(first)
    raise UserError(
        f"source '{first}' is not a kind tfkit.records can read; expected .npy, .npz, .h5/.hdf5, a .csv, a "
        "folder of images in class subfolders, or a prepared tensorflow-datasets folder (with dataset_info.json)."
    )
