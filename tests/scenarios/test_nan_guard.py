from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import DIGITS_CONFIG, read_scalars, stderr_lines, tfkit_process

import tfkit.train


def test_a_non_finite_loss_restores_the_last_good_state_lowers_the_rate_and_finishes(tmp_path, capsys):
    run = tmp_path / "run"
    summary = tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=["train.epochs=3", "faults.nan_loss_at_step=30"])
    out = capsys.readouterr().out
    assert "fault injection on: a non-finite loss in step 30" in out
    assert "the loss was not finite at step 30; restored step 22 and retrying with the learning rate x0.5" in out
    assert summary["status"] == "completed" and summary["steps"] == 66
    assert np.isfinite(summary["metrics"]["loss"])
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run / "checkpoints")))
    assert reader.get_tensor("learning_rate_scale/.ATTRIBUTES/VARIABLE_VALUE") == 0.5  # kept for a resume
    losses = read_scalars(run / "logs" / "train", "loss")
    assert all(np.isfinite(value) for value in losses.values())  # the poisoned call was never logged
    assert sorted(losses) == list(losses) and max(losses) == 66  # logging goes on after the rewind


@pytest.mark.slow
def test_a_loss_that_stays_non_finite_stops_after_the_retries_with_exit_75(outside_repo):
    args = ["--set", "faults.nan_loss_at_step=30", "--set", "faults.nan_loss_repeats=9", "--set", "train.nan_retries=2"]
    result = tfkit_process(["tfkit.train", "--workdir", "run", "--set", "train.epochs=3", *args], cwd=outside_repo)
    assert result.returncode == 75, result.stderr
    assert result.stdout.count("retrying with the learning rate") == 2
    assert "x0.25 (retry 2 of 2)" in result.stdout
    summary = json.loads((outside_repo / "run" / "summary.json").read_text())
    assert (summary["status"], summary["stop_reason"], summary["steps"]) == ("stopped", "nan", 22)
    assert "the loss was not finite at step 30 after 2 retries" in summary["stop_detail"]
    assert stderr_lines(result)[-1].startswith("tfkit: stopped: nan at step 22")
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(outside_repo / "run" / "checkpoints")))
    for name in reader.get_variable_to_shape_map():
        if name.startswith("optimizer/_trainable_variables"):
            assert np.isfinite(reader.get_tensor(name)).all(), name  # the last good state, never the poisoned one
