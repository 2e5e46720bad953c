"""tfkit.export_command: an output export cannot write or would replace, and a folder without a run, are refused
before TensorFlow loads, with the lines ``tfkit.export.export`` gives. Bad flags and ``--help``:
``test_command_flags.py``."""

from __future__ import annotations

import pytest
from conftest import refused_early, run_without_weights

from tfkit import checkpoint, export_command

EXPORT = ["tfkit.export", "run", "--out", "model.keras"]


def exported_before(folder):
    run_without_weights(folder / "run")
    (folder / "model.keras").write_text("an earlier export\n")


def broken_config(folder):
    run_without_weights(folder / "run")
    (folder / "run" / "config.yaml").write_text("train:\n  epoch: 3\n")


@pytest.mark.parametrize(
    ("prepare", "out", "says"),
    [
        (lambda folder: None, "model.keras", "'run' holds no tfkit run with checkpoints"),
        (lambda folder: run_without_weights(folder / "run", checkpoints=False), "model.keras", "with checkpoints"),
        (exported_before, "model.keras", "--out 'model.keras' exists; expected a new path, or --force"),
        (lambda folder: run_without_weights(folder / "run"), "model.onnx", "extension .onnx export cannot write"),
        (lambda folder: run_without_weights(folder / "run"), "run/model.keras", "is the run folder or inside it"),
        (broken_config, "model.keras", "config key 'train.epoch' is unknown"),
    ],
    ids=["no-run", "no-checkpoints", "existing-out", "onnx", "inside-the-run", "broken-config"],
)
def test_a_folder_without_a_run_or_a_bad_output_is_refused_before_tensorflow_loads(tmp_path, prepare, out, says):
    prepare(tmp_path)
    assert says in refused_early(["tfkit.export", "run", "--out", out], cwd=tmp_path)


def test_the_run_file_is_the_one_checkpoints_are_written_with():
    assert export_command.RUN_FILE == checkpoint.RUN_FILE
