"""tfkit.predict_command: bad options, an existing --out, a missing --like file and a folder without a run are
refused before TensorFlow loads, with the lines ``tfkit.predict.run`` gives. Bad flags and ``--help``:
``test_command_flags.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import refused_early, run_without_weights

from tfkit import predict_command
from tfkit.errors import UserError

PREDICT = ["tfkit.predict", "run", "--data", "test", "--out", "submission.csv"]


def a_run(folder):
    run_without_weights(folder / "run")


def predicted_before(folder):
    a_run(folder)
    (folder / "submission.csv").write_text("id,label\n1,cat\n")


def no_checkpoints(folder):
    run_without_weights(folder / "run", checkpoints=False)


@pytest.mark.parametrize(
    ("prepare", "args", "says"),
    [
        (lambda folder: None, PREDICT, "'run' holds no tfkit run; expected a workdir of python -m tfkit.train"),
        (predicted_before, PREDICT, "'submission.csv' already exists; expected a new file. Pass --force"),
        (a_run, [*PREDICT, "--like", "sample.csv"], "--like 'sample.csv' does not exist"),
        (a_run, ["tfkit.predict", "run", "other", *PREDICT[2:]], "'other' holds no tfkit run; expected a workdir"),
        (no_checkpoints, PREDICT, "'run' holds no tfkit run with checkpoints"),
    ],
    ids=["no-run", "existing-out", "missing-like", "second-run-missing", "no-checkpoints"],
)
def test_a_folder_without_a_run_or_a_bad_path_is_refused_before_tensorflow_loads(tmp_path, prepare, args, says):
    prepare(tmp_path)
    assert says in refused_early(args, cwd=tmp_path)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"output": "logits"}, "--as received 'logits'; expected one of label, probs, raw."),
        ({"tta": "rotate"}, "--tta received 'rotate'; expected flip."),
        ({"target": Path("raw.npy")}, "--out received 'raw.npy' for --as label; expected a .npy file for raw"),
    ],
)
def test_options_from_python_are_checked_as_the_flags_are(tmp_path, options, says):
    given = {"target": tmp_path / "out.csv", "output": "label", "tta": None, "force": False, **options}
    with pytest.raises(UserError, match=says.replace(".", r"\.")):
        predict_command.check_options([tmp_path], **given)
    with pytest.raises(UserError, match="received no WORKDIR"):
        predict_command.check_options([], target=tmp_path / "out.csv", output="label", tta=None, force=False)
