"""A competition from its files to ``submission.csv``: Kaggle ``.tfrec`` files (JPEG ``image``, int64 ``class``,
bytes ``id``) with an unlabeled test split, trained without any schema file, predicted with the run's own
preprocessing, every test id once and in order, through the command line and through Python."""

from __future__ import annotations

import csv

import pytest
from conftest import tfkit_process
from foreign_data import kaggle_tfrecords

import tfkit.predict
import tfkit.train

pytestmark = pytest.mark.slow


def test_kaggle_files_to_a_submission_from_the_cli_and_from_python(tmp_path):
    kaggle = tmp_path / "input"
    kaggle_tfrecords(kaggle, per_file=16)
    test_ids = kaggle_tfrecords(kaggle, split="test", label_key=None, files=3, per_file=7, seed=1)
    train = [
        "--set",
        f"data.train={kaggle / 'train' / '*.tfrec'}",
        "--set",
        "data.label=class",
        "--set",
        "data.image_size=[32,32]",
        "--set",
        "data.eval=null",
        "--set",
        "train.epochs=1",
        "--set",
        "train.global_batch_size=16",
    ]
    trained = tfkit_process(["tfkit.train", "--workdir", "run", *train], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (tmp_path / "run" / "schema-train.json").is_file()  # the inferred schema is kept with the run

    args = ["tfkit.predict", "run", "--data", str(kaggle / "test" / "*.tfrec"), "--out", "submission.csv"]
    predicted = tfkit_process(args, cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    with (tmp_path / "submission.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["id"] for row in rows] == test_ids  # every id once, in file and record order
    assert all(row[name] in {"0", "1", "2"} for row in rows for name in row if name != "id")

    again = tfkit_process(args, cwd=tmp_path)  # an existing submission is never replaced without --force
    assert again.returncode == 2 and (tmp_path / "submission.csv").read_text().count("\n") == len(test_ids) + 1

    out = tmp_path / "from_python.csv"
    tfkit.predict.run([tmp_path / "run"], data=str(kaggle / "test" / "*.tfrec"), out=out, output="probs")
    with out.open() as handle:
        probabilities = list(csv.DictReader(handle))
    assert [row["id"] for row in probabilities] == test_ids
    for row in probabilities:
        values = [float(value) for name, value in row.items() if name != "id"]
        assert len(values) == 3 and abs(sum(values) - 1.0) < 1e-5
