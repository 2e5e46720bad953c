"""tfkit.evaluate_command: bad flags, an existing metrics file and a folder without a run are refused before
TensorFlow loads, with the lines ``tfkit.evaluate.run`` gives."""

from __future__ import annotations

import pytest
from conftest import probe_command, refused_early, run_without_weights

from tfkit import evaluate_command
from tfkit.errors import UserError

EVALUATE = ["tfkit.evaluate", "run", "--data", "eval"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([*EVALUATE, "--batch_size", "0"], "--batch_size: received '0'"),
        (["tfkit.evaluate", "run"], "the following arguments are required: --data"),
        ([*EVALUATE, "--checkpoint", "middle"], "invalid choice: 'middle'"),
    ],
)
def test_a_bad_flag_is_refused_before_tensorflow_loads(tmp_path, args, says):
    run_without_weights(tmp_path / "run")
    assert says in refused_early(args, cwd=tmp_path)


def no_checkpoints(folder):
    run_without_weights(folder / "run", checkpoints=False)


def broken_config(folder):
    (folder / "run").mkdir()
    (folder / "run" / "config.yaml").write_text("train:\n  epoch: 3\n")


def evaluated_before(folder):
    run_without_weights(folder / "run")
    (folder / "run.metrics.json").write_text("{}\n")


@pytest.mark.parametrize(
    ("prepare", "says"),
    [
        (lambda folder: None, "'run' holds no tfkit run; expected a workdir of python -m tfkit.train"),
        (no_checkpoints, "'run' holds no tfkit run with checkpoints"),
        (broken_config, "config key 'train.epoch' is unknown"),
        (evaluated_before, "'run.metrics.json' already exists; expected a new file. Pass --force"),
    ],
    ids=["no-run", "no-checkpoints", "broken-config", "existing-metrics"],
)
def test_a_folder_without_a_run_or_an_existing_file_is_refused_before_tensorflow_loads(tmp_path, prepare, says):
    prepare(tmp_path)
    assert says in refused_early(EVALUATE, cwd=tmp_path)


def test_help_is_answered_before_tensorflow_loads(tmp_path):
    result = probe_command(["tfkit.evaluate", "--help"], cwd=tmp_path)
    assert "usage: python -m tfkit.evaluate" in result.stdout and "--cpu_replicas" in result.stdout
    assert "WORKDIR.metrics.json" in result.stdout  # the module's doc
    assert result.stdout.split()[-3:] == ["no", "tensorflow", "0"]


def test_the_metrics_file_lies_beside_the_run_unless_out_says_otherwise(tmp_path):
    assert evaluate_command.metrics_path(tmp_path / "run") == tmp_path / "run.metrics.json"
    (tmp_path / "mine.json").write_text("{}\n")
    assert evaluate_command.metrics_path(tmp_path / "run", tmp_path / "mine.json", force=True) == tmp_path / "mine.json"
    with pytest.raises(UserError, match=r"mine\.json' already exists"):
        evaluate_command.metrics_path(tmp_path / "run", tmp_path / "mine.json")
