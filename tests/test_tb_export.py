"""export: every scalar encoding read, every float written at full precision, NaN and infinities spelled out."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pandas as pd
import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
from tensorboardX import SummaryWriter

from tfkit import tb
from tfkit.errors import UserError
from tfkit.tb import files

SPECIAL = [math.inf, -math.inf, math.nan, 4e-12, 0.1, 1 / 3, 123456.789]


def scalar_tensor(**fields):
    return tensor_pb2.TensorProto(tensor_shape=tensor_shape_pb2.TensorShapeProto(), **fields)


def write_events(folder, values):
    """An event file of one value per step, the way a Python writer (tensorboard's own, say) stores them."""
    folder.mkdir(parents=True, exist_ok=True)
    metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    events = [event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2")]
    for step, (tag, value) in enumerate(values):
        events.append(
            event_pb2.Event(
                wall_time=1.7e9 + step / 3, step=step, summary=summary_pb2.Summary(value=[value(tag, metadata)])
            )
        )
    (folder / "events.out.tfevents.1.python").write_bytes(b"".join(files.frame(e.SerializeToString()) for e in events))
    return folder


@pytest.fixture
def special_logs(tmp_path):
    writer = SummaryWriter(str(tmp_path / "logs"))
    for step, value in enumerate(SPECIAL):
        writer.add_scalar("value", value, step)
    writer.close()
    return tmp_path / "logs"


def float32(value):
    return float(np.float32(value))


def same(left, right):
    return (math.isnan(left) and math.isnan(right)) or left == right


def test_csv_and_json_keep_every_bit_and_spell_out_nan_and_infinities(special_logs, tmp_path):
    expected = [float32(value) for value in SPECIAL]  # tensorboardX stores float32 simple_values
    assert tb.export(special_logs, tmp_path / "values.csv") == len(SPECIAL)
    with open(tmp_path / "values.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["value"] for row in rows[:3]] == ["inf", "-inf", "nan"]
    assert all(same(float(row["value"]), value) for row, value in zip(rows, expected, strict=True))
    tb.export(special_logs, tmp_path / "values.json")
    rows = json.loads((tmp_path / "values.json").read_text())
    assert [row["value"] for row in rows[:3]] == ["Infinity", "-Infinity", "NaN"]
    assert all(same(float(row["value"]), value) for row, value in zip(rows, expected, strict=True))
    assert rows[3]["value"] == float32(4e-12) != 0.0
    tb.export(special_logs, tmp_path / "values.parquet")
    table = pd.read_parquet(tmp_path / "values.parquet")
    assert all(same(left, right) for left, right in zip(table["value"], expected, strict=True))
    wall_times = [float(row["wall_time"]) for row in csv.DictReader(open(tmp_path / "values.csv"))]  # noqa: SIM115
    assert wall_times == list(tb.scalars(special_logs)["wall_time"])


def test_integer_boolean_half_and_double_scalars_are_read(tmp_path):
    def tensor(**fields):
        return lambda tag, metadata: summary_pb2.Summary.Value(
            tag=tag, metadata=metadata, tensor=scalar_tensor(**fields)
        )

    logdir = write_events(
        tmp_path / "logs",
        [
            ("int64", tensor(dtype=9, int64_val=[2**40 + 1])),
            ("int32", tensor(dtype=3, int_val=[-7])),
            ("bool", tensor(dtype=10, bool_val=[True])),
            ("half", tensor(dtype=19, half_val=[int(np.float16(0.5).view(np.uint16))])),
            ("double", tensor(dtype=2, double_val=[0.1])),
            ("packed", tensor(dtype=9, tensor_content=np.int64(42).tobytes())),
        ],
    )
    tb.export(logdir, tmp_path / "values.json")
    values = {row["tag"]: row["value"] for row in json.loads((tmp_path / "values.json").read_text())}
    assert values == {"int64": 2**40 + 1, "int32": -7, "bool": 1, "half": 0.5, "double": 0.1, "packed": 42}


def test_an_existing_export_is_replaced_only_with_force(special_logs, tmp_path):
    (tmp_path / "values.csv").write_text("mine\n")
    with pytest.raises(UserError, match="already exists"):
        tb.export(special_logs, tmp_path / "values.csv")
    assert (tmp_path / "values.csv").read_text() == "mine\n"
    tb.export(special_logs, tmp_path / "values.csv", force=True)
    assert len((tmp_path / "values.csv").read_text().splitlines()) == len(SPECIAL) + 1
    with pytest.raises(UserError, match=r"expected a \.csv, \.json or \.parquet"):
        tb.export(special_logs, tmp_path / "values.txt")
