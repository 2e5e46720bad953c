"""Every run command (evaluate, predict, export) refuses a bad flag and answers ``--help`` before TensorFlow loads.

One table for the three: their checks of run folders and paths stay in ``test_<command>_command.py``.
"""

from __future__ import annotations

import pytest
from conftest import probe_command, refused_early, run_without_weights

EVALUATE = ["tfkit.evaluate", "run", "--data", "eval"]
PREDICT = ["tfkit.predict", "run", "--data", "test", "--out", "submission.csv"]
EXPORT = ["tfkit.export", "run", "--out", "model.keras"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([*EVALUATE, "--batch_size", "0"], "--batch_size: received '0'"),
        (["tfkit.evaluate", "run"], "the following arguments are required: --data"),
        ([*EVALUATE, "--checkpoint", "middle"], "invalid choice: 'middle'"),
        ([*PREDICT, "--as", "logits"], "argument --as: invalid choice: 'logits'"),
        ([*PREDICT, "--cpu_replicas", "two"], "--cpu_replicas: received 'two'"),
        (["tfkit.predict", "run", "--data", "test"], "the following arguments are required: --out"),
        ([*PREDICT, "--as", "raw"], "--out received 'submission.csv' for --as raw; expected a .npy file"),
        (["tfkit.export", "run"], "the following arguments are required: --out"),
        ([*EXPORT, "--checkpoint", "middle"], "invalid choice: 'middle'"),
        ([*EXPORT, "--force", "yes"], "unrecognized arguments: yes"),
    ],
)
def test_a_bad_flag_is_refused_before_tensorflow_loads(tmp_path, args, says):
    run_without_weights(tmp_path / "run")
    assert says in refused_early(args, cwd=tmp_path)


@pytest.mark.parametrize(
    ("command", "flag", "doc"),
    [
        ("tfkit.evaluate", "--cpu_replicas", "WORKDIR.metrics.json"),
        ("tfkit.predict", "--tta {flip}", "sample_submission.csv"),
        ("tfkit.export", "--checkpoint {best,last}", "tf.saved_model.load(PATH).serve"),
    ],
)
def test_help_is_answered_before_tensorflow_loads(tmp_path, command, flag, doc):
    result = probe_command([command, "--help"], cwd=tmp_path)
    assert f"usage: python -m {command}" in result.stdout and flag in result.stdout
    assert doc in result.stdout  # the module's doc
    assert result.stdout.split()[-3:] == ["no", "tensorflow", "0"]
