"""tfkit.tb on tfkit's own logs: the README's case (keep epochs 81 to 100) and a resumed run's two sessions."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import DIGITS_CONFIG

import tfkit.train
from tfkit import tb


@pytest.fixture(scope="module")
def tfkit_logs(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tb") / "run"
    tfkit.train.run(DIGITS_CONFIG, workdir=workdir, overrides=["train.epochs=5", "train.steps_per_execution=1"])
    return workdir / "logs"


@pytest.mark.slow
def test_export_rewrite_and_the_table_round_trip_a_tfkit_run_exactly(tfkit_logs, tmp_path):
    original = tb.scalars(tfkit_logs)
    assert len(original) > 10
    tb.rewrite(tfkit_logs, tmp_path / "copy")
    pd.testing.assert_frame_equal(tb.scalars(tmp_path / "copy"), original)  # values, steps, tags, wall times, runs
    rows = tb.export(tfkit_logs, tmp_path / "scalars.csv")
    exported = pd.read_csv(tmp_path / "scalars.csv", dtype={"run": str})
    assert rows == len(exported) == len(original)
    np.testing.assert_array_equal(exported["wall_time"].to_numpy(), original["wall_time"].to_numpy())
    np.testing.assert_array_equal(exported["value"].to_numpy(), original["value"].to_numpy())


@pytest.mark.slow
def test_keep_steps_81_to_100_of_a_tfkit_run(tfkit_logs, tmp_path):
    tb.rewrite(tfkit_logs, tmp_path / "kept", steps=tb.parse_steps("81:100"))
    kept = tb.scalars(tmp_path / "kept")
    assert kept["step"].min() == 81 and kept["step"].max() == 100
    assert sorted(kept.query("run == 'train' and tag == 'loss'")["step"]) == list(range(81, 101))
    pd.testing.assert_frame_equal(kept, tb.scalars(tfkit_logs, steps=(81, 100)))


@pytest.mark.slow
def test_merging_a_tfkit_run_whose_sessions_already_continue_leaves_steps_alone(tmp_path):
    run = tmp_path / "run"
    tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=["train.epochs=2", "faults.preempt_at_step=30"])
    first = tmp_path / "session1"
    shutil.copytree(run / "logs", first)
    tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=["train.epochs=2"])
    second = tmp_path / "session2"
    shutil.copytree(run / "logs", second)
    for path in tb.event_files(second):  # session 2's own files: drop the copy of session 1's
        if path.relative_to(second) in {p.relative_to(first) for p in tb.event_files(first)}:
            path.unlink()
    reports = tb.merge([first, second], tmp_path / "merged")
    merged = tb.scalars(tmp_path / "merged").query("run == 'train' and tag == 'loss'")
    assert [report.shift for report in reports] == [0, 0]
    assert list(merged["step"]) == sorted(set(merged["step"])) and merged["step"].max() == 44
