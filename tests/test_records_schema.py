"""A split's schema: its types, and reading its schema.json."""

from __future__ import annotations

import json

import pytest

from tfkit import records
from tfkit.errors import UserError


def test_reading_a_missing_folder_or_schema_says_what_to_do(tmp_path):
    with pytest.raises(UserError, match="does not exist; expected a folder of TFRecords"):
        records.read_schema(tmp_path / "nowhere")
    with pytest.raises(UserError, match=r"has no schema\.json; expected one written by tfkit\.records"):
        records.read_schema(tmp_path)


def test_a_schema_and_its_shards_round_trip_through_json():
    schema = records.Schema(
        split="eval",
        features={
            "image": records.Feature("uint8", (-1, -1, 3), "jpeg"),
            "label": records.Feature("int64", (), "int64", num_classes=2, classes=("cat", "dog")),
        },
        shards=(records.Shard("eval-00000-of-00002.tfrecord", 3, 100), records.Shard("/abs/eval-1.tfrecord", 2)),
        records=5,
        compression="GZIP",
    )
    body = schema.to_json()
    assert body["shards"] == [
        {"file": "eval-00000-of-00002.tfrecord", "records": 3, "bytes": 100},
        {"file": "/abs/eval-1.tfrecord", "records": 2, "bytes": 0},
    ]
    assert body["format"] == records.FORMAT
    assert records.Schema.from_json(json.loads(json.dumps(body))) == schema
    assert schema.bytes == 100
    assert schema.files("/data") == ["/data/eval-00000-of-00002.tfrecord", "/abs/eval-1.tfrecord"]


def test_a_malformed_schema_or_an_unknown_encoding_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "schema.json").write_text('{"split": "train", "features": {}}')
    with pytest.raises(UserError, match=r"schema '.*schema\.json' is malformed \('shards'\)"):
        records.read_schema(tmp_path)
    body = {"split": "train", "records": 0, "shards": [], "features": {"x": {"dtype": "uint8", "shape": []}}}
    body["features"]["x"]["encoding"] = "webp"
    (tmp_path / "schema.json").write_text(json.dumps(body))
    with pytest.raises(UserError, match=r"feature 'x' has encoding 'webp'; expected one of"):
        records.read_schema(tmp_path)
