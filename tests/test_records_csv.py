"""A CSV plus an image folder as a ``records write`` source: ids, class names, and one line for each bad row."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import stderr_lines, tfkit_process
from foreign_data import csv_images, jpeg

from tfkit import records
from tfkit.errors import UserError
from tfkit.records.sources import CSVImageSource, open_source


def test_class_names_become_sorted_ids_and_the_rows_keep_their_order(tmp_path):
    table = csv_images(tmp_path, rows=6)
    source = open_source([str(table)], images=str(tmp_path / "images"), id_column="image_id", label="label")
    assert isinstance(source, CSVImageSource) and len(source) == 6
    assert source.features["label"].classes == ("cat", "dog") and source.features["label"].num_classes == 2
    rows = [line.split(",") for line in table.read_text().splitlines()[1:]]
    examples = list(source.read(np.arange(6)))
    assert [example["image_id"] for example in examples] == [row[0].encode() for row in rows]
    assert [int(example["label"]) for example in examples] == [("cat", "dog").index(row[1]) for row in rows]
    assert examples[0]["image"] == (tmp_path / "images" / "img000.jpg").read_bytes()


def test_integer_labels_are_kept_and_an_unlabeled_csv_has_no_label(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    lines = ["id,target"]
    for row in range(4):
        (tmp_path / "images" / f"{row}.jpg").write_bytes(jpeg(rng, height=8 + row, width=8, label=0))
        lines.append(f"{row}.jpg,{row * 2}")
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    labelled = CSVImageSource(str(tmp_path / "t.csv"), images=str(tmp_path / "images"), label_column="target")
    assert labelled.features["target"].classes is None and labelled.features["target"].num_classes == 7
    assert labelled.features["image"].shape == (-1, 8, 3)  # heights vary
    unlabeled = CSVImageSource(str(tmp_path / "t.csv"), images=str(tmp_path / "images"))
    assert set(unlabeled.features) == {"image", "id"}


def test_a_missing_image_and_a_missing_column_are_one_line_each(tmp_path):
    table = csv_images(tmp_path, rows=3)
    (tmp_path / "images" / "img001.jpg").unlink()
    with pytest.raises(UserError, match=r"train\.csv: line 3: image 'img001' is not in"):
        CSVImageSource(str(table), images=str(tmp_path / "images"), id_column="image_id")
    result = tfkit_process(
        ["tfkit.records", "write", str(table), "--images", "images", "--id", "name", "--out", "out"], cwd=tmp_path
    )
    assert result.returncode == 2 and not (tmp_path / "out").exists()
    (line,) = stderr_lines(result)
    assert "--id received 'name', which is not a column" in line and "image_id, label" in line


def test_records_write_converts_a_csv_with_its_class_names_in_the_schema(tmp_path):
    table = csv_images(tmp_path, rows=10)
    args = ["tfkit.records", "write", str(table), "--images", "images", "--id", "image_id", "--label", "label"]
    result = tfkit_process([*args, "--out", "out"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    schema = records.read_schema(tmp_path / "out")
    assert schema.records == 10 and schema.features["label"].classes == ("cat", "dog")
    assert schema.features["image"] == records.Feature("uint8", (32, 32, 3), "jpeg")
