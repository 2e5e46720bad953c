"""python -m tfkit.evaluate: prints the metrics of a split and writes them beside the run, never over a file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_refused, file_hashes, model_file, tfkit_process

import tfkit.train
from tfkit import records

FEATURES = {
    "image": records.Feature("float32", (3,), "raw"),
    "label": records.Feature("int64", (), "int64", num_classes=2),
}


@pytest.mark.slow
def test_the_cli_prints_and_writes_the_metrics_beside_the_run_and_keeps_an_existing_file(tmp_path):
    generator = np.random.default_rng(0)
    rows = [{"image": generator.normal(size=3).astype(np.float32), "label": np.int64(i % 2)} for i in range(90)]
    records.write_split(rows[:64], tmp_path / "train", split="train", features=FEATURES, num_shards=2)
    records.write_split(rows[64:], tmp_path / "eval", split="eval", features=FEATURES, num_shards=3)
    config = {
        "model": f"{model_file(tmp_path)}:flat",
        "data": {"train": str(tmp_path / "train"), "features": "image", "label": "label"},
        "train": {"epochs": 1, "global_batch_size": 16},
    }
    tfkit.train.run(config, workdir=tmp_path / "run")
    inside = sorted(path.name for path in (tmp_path / "run").iterdir())

    result = tfkit_process(["tfkit.evaluate", "run", "--data", "eval"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2].startswith("tfkit: 26 records of eval: loss ")
    written = json.loads((tmp_path / "run.metrics.json").read_text())
    assert written["records"] == 26 and set(written["metrics"]) == {"loss", "accuracy"}
    assert round(written["metrics"]["accuracy"] * 26, 4).is_integer()
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == inside  # nothing inside the run

    before = file_hashes(tmp_path)
    again = tfkit_process(["tfkit.evaluate", "run", "--data", "eval"], cwd=tmp_path)
    line = assert_refused(again, before=before, roots=[tmp_path])
    assert "run.metrics.json' already exists" in line and "--force" in line
