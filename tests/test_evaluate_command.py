"""tfkit.evaluate_command: an existing metrics file and a folder without a run are refused before TensorFlow loads,
with the lines ``tfkit.evaluate.run`` gives. Bad flags and ``--help``: ``test_command_flags.py``."""

from __future__ import annotations

import pytest
from conftest import refused_early, run_without_weights

from tfkit import evaluate_command
from tfkit.errors import UserError

EVALUATE = ["tfkit.evaluate", "run", "--data", "eval"]


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


def test_the_metrics_file_lies_beside_the_run_unless_out_says_otherwise(tmp_path):
    assert evaluate_command.metrics_path(tmp_path / "run") == tmp_path / "run.metrics.json"
    (tmp_path / "mine.json").write_text("{}\n")
    assert evaluate_command.metrics_path(tmp_path / "run", tmp_path / "mine.json", force=True) == tmp_path / "mine.json"
    with pytest.raises(UserError, match=r"mine\.json' already exists"):
        evaluate_command.metrics_path(tmp_path / "run", tmp_path / "mine.json")
