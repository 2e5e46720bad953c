"""Scalars read from event records as exactly as they were stored, and ``export`` to CSV, JSON or Parquet.

A scalar is a classic ``simple_value`` (tensorboardX, TF1) or a one-element numeric tensor of the scalars plugin
(TF2's ``tf.summary.scalar``, Keras), in any dtype: float, double, half, integer or boolean. Values are decoded with
numpy from the protobufs, so no TensorFlow is imported, and written at full precision: a float32 is the exact
float64 it widens to, and NaN and infinities are written out.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tfkit.errors import UserError
from tfkit.tb import events, files, output

COLUMNS = ("run", "tag", "step", "value", "wall_time")
FORMATS = (".csv", ".json", ".parquet")
# TensorFlow's DataType numbers (types.proto) -> (numpy dtype, the TensorProto field of a value list).
_DTYPES = {
    1: (np.float32, "float_val"),
    2: (np.float64, "double_val"),
    3: (np.int32, "int_val"),
    4: (np.uint8, "int_val"),
    5: (np.int16, "int_val"),
    6: (np.int8, "int_val"),
    9: (np.int64, "int64_val"),
    10: (np.bool_, "bool_val"),
    14: (np.uint16, "half_val"),  # bfloat16: the top 16 bits of a float32
    17: (np.uint16, "int_val"),
    19: (np.float16, "half_val"),
    22: (np.uint32, "uint32_val"),
    23: (np.uint64, "uint64_val"),
}
_BFLOAT16, _HALF = 14, 19


class Row(NamedTuple):
    """One scalar point. ``run`` is its folder under the logdir (``.`` for the top), as TensorBoard names runs."""

    run: str
    tag: str
    step: int
    value: float | int
    wall_time: float


def tensor_scalar(tensor: Any) -> float | int | None:
    """The value of a one-element numeric ``TensorProto``, or None for any other tensor (text, histogram...)."""
    if tensor.dtype not in _DTYPES or math.prod(dim.size for dim in tensor.tensor_shape.dim) != 1:
        return None
    dtype, field = _DTYPES[tensor.dtype]
    array: np.ndarray
    if tensor.tensor_content:
        array = np.frombuffer(tensor.tensor_content, dtype=dtype)
    elif field == "half_val":  # half and bfloat16 values are listed as their 16 bits
        array = np.asarray(tensor.half_val, dtype=np.int64).astype(np.uint16)
        array = array.view(np.float16) if tensor.dtype == _HALF else array
    else:
        array = np.asarray(getattr(tensor, field), dtype=dtype)
    if len(array) != 1:
        return None
    if tensor.dtype == _BFLOAT16:
        return float((array.astype(np.uint32) << 16).view(np.float32)[0])
    item = array[0].item()
    return int(item) if isinstance(item, (bool, int)) else float(item)


def read_rows(
    logdir: str | os.PathLike[str], *, tags: str | None = None, steps: events.Steps = events.ALL_STEPS
) -> Iterator[Row]:
    """Every scalar point under ``logdir`` in file order, optionally filtered by tag regex and step window."""
    root = Path(logdir)
    pattern = events.parse_tags(tags)
    sources = files.event_files(root)
    plugins: dict[tuple[str, str], str] = {}
    for source in sources:
        run = files.run_name(root, source)
        for data in files.read_records(source):
            event = events.parse(data)
            for value in event.summary.value:  # a tag's plugin is named on its first event, kept or not
                if value.HasField("metadata"):
                    plugins.setdefault((run, value.tag), value.metadata.plugin_data.plugin_name)
            if not events.in_window(event.step, steps):
                continue
            for value in event.summary.value:
                if pattern is not None and not pattern.search(value.tag):
                    continue
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    number: float | int | None = float(value.simple_value)
                elif kind == "tensor" and plugins.get((run, value.tag), "") in ("scalars", ""):
                    number = tensor_scalar(value.tensor)
                else:
                    continue
                if number is not None:
                    yield Row(run, value.tag, int(event.step), number, float(event.wall_time))


def scalars(logdir: str | os.PathLike[str], *, tags: str | None = None, steps: events.Steps = events.ALL_STEPS) -> Any:
    """Every scalar under ``logdir`` as a pandas DataFrame with columns run, tag, step, value (float64), wall_time.

    Rows are sorted by run, tag and step (then wall time, so a step written twice keeps its order).
    """
    return _table(sorted(read_rows(logdir, tags=tags, steps=steps), key=_order))


def export(
    logdir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    tags: str | None = None,
    steps: events.Steps = events.ALL_STEPS,
    force: bool = False,
) -> int:
    """Writes the selected scalars to ``out`` (``.csv``, ``.json`` or ``.parquet``); returns the row count.

    CSV and JSON carry each float's shortest exact text (NaN and infinities as ``nan``/``inf`` in CSV and as the
    strings ``"NaN"``/``"Infinity"``/``"-Infinity"`` in JSON, which has no number for them); integers stay integers.

    Raises:
        UserError: An unknown format, a missing pyarrow for Parquet, bad input, or an existing ``out`` without
            ``force``; nothing is written.
    """
    target = Path(out)
    if target.suffix not in FORMATS:
        raise UserError(f"--out received '{target}'; expected a .csv, .json or .parquet file.")
    if target.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401 - only to fail before reading, with the fix
        except ImportError:
            raise UserError(
                "writing .parquet needs pyarrow: pip install pyarrow, or export to .csv or .json."
            ) from None
    rows = sorted(read_rows(logdir, tags=tags, steps=steps), key=_order)
    with output.staged_file(target, inputs=[Path(logdir)], force=force) as temporary:
        if target.suffix == ".csv":
            with open(temporary, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(COLUMNS)
                writer.writerows((*row[:3], repr(row.value), repr(row.wall_time)) for row in rows)
        elif target.suffix == ".json":
            lines = [
                json.dumps({**row._asdict(), "value": _json_number(row.value)}, ensure_ascii=False) for row in rows
            ]
            temporary.write_text("[\n" + ",\n".join(lines) + ("\n]\n" if lines else "]\n"), encoding="utf-8")
        else:
            _table(rows).to_parquet(temporary, index=False)
    return len(rows)


def _json_number(value: float | int) -> float | int | str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _order(row: Row) -> tuple[str, str, int, float]:
    return row.run, row.tag, row.step, row.wall_time


def _table(rows: list[Row]) -> Any:
    import pandas as pd

    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return table.astype({"run": str, "tag": str, "step": "int64", "value": "float64", "wall_time": "float64"})
