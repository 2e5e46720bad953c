"""tfkit.train_command: bad flags and config keys are refused before TensorFlow loads, with train's own line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tfkit import train_command
from tfkit.errors import UserError

PROBE = """
import runpy, sys
sys.argv = ["tfkit.train", *sys.argv[1:]]
try:
    runpy.run_module("tfkit.train", run_name="__main__")
except SystemExit as stop:
    print("tensorflow loaded" if "tensorflow" in sys.modules else "no tensorflow", stop.code)
"""


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--epochs", "3"], "unrecognized arguments: --epochs 3"),
        (["--set", "train.epoch=3"], "config key 'train.epoch' is unknown"),
        (["--cpu_replicas", "0"], "--cpu_replicas: received '0'"),
        (["--tpu", "--strategy", "cpu"], "--tpu and --strategy cpu contradict"),
    ],
)
def test_a_bad_command_line_is_refused_before_tensorflow_loads(tmp_path, args, says):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.split() == ["no", "tensorflow", "2"], result.stderr
    assert result.stderr.startswith("tfkit: error: ") and says in result.stderr
    assert result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_help_is_answered_before_tensorflow_loads(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert "usage: python -m tfkit.train" in result.stdout
    assert result.stdout.split()[-3:] == ["no", "tensorflow", "0"]


def test_the_shorthand_flags_become_config_keys():
    args = train_command.parser(None).parse_args(["--tpu", "--time_limit", "8h", "--set", "seed=3"])
    assert train_command.overrides(args) == ["seed=3", "distribute.strategy=tpu", "train.time_limit=8h"]
    config = train_command.load_config("digits", train_command.overrides(args))
    assert (config.distribute.strategy, config.seed) == ("tpu", 3)


def test_a_bundled_config_that_does_not_exist_names_the_ones_that_do():
    with pytest.raises(UserError, match=r"there is no bundled config 'digitz'; expected one of: .*digits"):
        train_command.load_config("digitz", [])
