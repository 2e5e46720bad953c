"""A Ctrl-C or SIGTERM ends ``python -m tfkit.predict`` and ``tfkit.evaluate`` at the next batch: exit 130, one line,
nothing written. Real processes, real signals; a model layer that waits a second a batch keeps the command busy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DIGITS_DATA, model_file, stderr_lines

import tfkit.train

SLOW_MODEL = """
import os, time
import keras
import tensorflow as tf


class Watched(keras.layers.Layer):
    '''Passes its input on; while TFKIT_TEST_MARK names a file, notes each batch there and waits a second.'''

    def call(self, x):
        def note(x):
            mark = os.environ.get("TFKIT_TEST_MARK")
            if mark:
                with open(mark, "a") as handle:
                    handle.write("batch\\n")
                time.sleep(1.0)
            return x

        passed = tf.py_function(note, [x], x.dtype)
        passed.set_shape(x.shape)
        return passed


def slow(*, input_shape, num_classes):
    inputs = keras.Input(input_shape)
    flat = Watched()(keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs)))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(flat))
"""
BATCHES = 360 // 8  # the digits' eval split at --batch_size 8


@pytest.fixture(scope="module")
def slow_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("signals")
    tfkit.train.run(
        {
            "model": f"{model_file(root, SLOW_MODEL, name='slow.py')}:slow",
            "data": {"train": str(DIGITS_DATA / "train")},
            "train": {"epochs": 1, "global_batch_size": 64, "steps_per_execution": 2},
        },
        workdir=root / "run",
    )
    return root / "run"


@pytest.mark.parametrize(
    ("command", "out", "phase"),
    [
        (["tfkit.predict", "--as", "raw", "--batch_size", "8", "--out"], "p.npy", "predicting"),
        (["tfkit.evaluate", "--batch_size", "8", "--out"], "metrics.json", "evaluating"),
    ],
    ids=["predict", "evaluate"],
)
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_predicting_ends_at_the_next_batch_with_nothing_written(
    slow_run, tmp_path, command, out, phase, number
):
    mark = tmp_path / "batches"
    process = subprocess.Popen(
        [sys.executable, "-m", command[0], str(slow_run), "--data", str(DIGITS_DATA / "eval"), *command[1:], out],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TFKIT_TEST_MARK": str(mark)},
    )
    try:
        deadline = time.monotonic() + 240
        while not mark.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mark.exists(), "the first batch never came"
        process.send_signal(number)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert result.returncode == 130, stderr[-2000:]
    assert stderr_lines(result) == [
        f"tfkit: interrupted: {signal.Signals(number).name} while {phase}; nothing was written."
    ]
    assert len(mark.read_text().splitlines()) < BATCHES // 4  # the call under way finished (2 batches), no more
    assert sorted(path.name for path in tmp_path.iterdir()) == ["batches"]


def test_a_signal_while_tensorflow_loads_ends_predict_before_it_reads_anything(slow_run, tmp_path):
    command = [sys.executable, "-m", "tfkit.predict", str(slow_run), "--data", str(DIGITS_DATA / "eval")]
    process = subprocess.Popen(
        [*command, "--as", "raw", "--out", "p.npy"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    time.sleep(1.5)  # after the command's first imports (tenths of a second), within TensorFlow's (seconds)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=240)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert result.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert stderr_lines(result) == ["tfkit: interrupted: SIGINT while reading the split; nothing was written."]
    assert list(Path(tmp_path).iterdir()) == []
