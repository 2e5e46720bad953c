"""Loading local weights into a model or a backbone, with one line naming what does not match.

A Kaggle notebook often runs offline, so pretrained weights come from an attached dataset: a Keras ``.weights.h5``
file, or a legacy ``.h5`` file such as the ``*_notop.h5`` files that ``keras.applications`` downloads. Keras' own
errors for a file that does not fit are long and, for legacy files, name only a layer count; here the layers whose
weights are missing from the file, extra in it, or of another shape are named.
"""

from __future__ import annotations

import os
from typing import Any

import h5py
import keras

from tfkit.errors import UserError

_SHOWN = 5  # layers named in the one-line error before "and N more"


def load(model: keras.Model, path: str, *, key: str) -> None:
    """Loads the weights file at ``path`` into ``model``, for config key ``key``.

    Raises:
        UserError: The file is missing, is not a Keras weights file, or does not match the model's layers.
    """
    if not os.path.isfile(path):
        raise UserError(
            f"config key '{key}': '{path}' does not exist; expected a local .h5 or .weights.h5 weights file "
            "(on Kaggle, a path under /kaggle/input)."
        )
    if not h5py.is_hdf5(path):
        raise UserError(f"config key '{key}': '{path}' is not an HDF5 file; expected a .h5 or .weights.h5 file.")
    mismatches = _legacy_mismatches(model, path)
    if not mismatches:
        try:
            model.load_weights(path)
            return
        except (ValueError, KeyError) as error:
            mismatches = [str(error).strip().splitlines()[0]]
    more = len(mismatches) - _SHOWN
    shown = "; ".join(mismatches[:_SHOWN]) + (f"; and {more} more" if more > 0 else "")
    raise UserError(
        f"config key '{key}': '{path}' does not match model '{model.name}': {shown}. Expected weights saved from "
        "the same network without its top (a notop file) and the same input channels."
    )


def _legacy_mismatches(model: keras.Model, path: str) -> list[str]:
    """For a legacy ``.h5`` file (layer names and weight shapes in attributes), the layers that do not match."""
    with h5py.File(path, "r") as handle:
        group: Any = handle.get("model_weights", handle)
        if "layer_names" not in group.attrs:
            return []  # a Keras 3 .weights.h5 file: Keras checks it while loading
        in_file = {}
        for raw in group.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in group[name].attrs["weight_names"]]
            if names:
                in_file[name] = [tuple(group[name][weight].shape) for weight in names]
    # Keras loads a legacy file layer by layer in order, not by name, so compare in order.
    in_model = [(layer.name, [tuple(w.shape) for w in layer.weights]) for layer in model.layers if layer.weights]
    in_order = list(in_file.items())
    problems = [
        f"layer '{name}' has shapes {shapes}, the file's '{file_name}' {file_shapes}"
        for (name, shapes), (file_name, file_shapes) in zip(in_model, in_order, strict=False)
        if shapes != file_shapes
    ]
    if len(in_model) != len(in_order):
        missing = [name for name, _ in in_model if name not in in_file]
        problems.insert(
            0,
            f"the model has {len(in_model)} layers with weights, the file {len(in_order)}"
            + (f" (not in the file: {', '.join(missing[:_SHOWN])})" if missing else ""),
        )
    return problems
