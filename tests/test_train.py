from __future__ import annotations

import csv
import json

import pytest
import tensorflow as tf
from conftest import DIGITS_CONFIG, model_file, read_scalars, stderr_lines, tfkit_process

import tfkit.train
from tfkit import config as config_lib
from tfkit.errors import UserError

SUMMARY_KEYS = {
    "status",
    "strategy",
    "replicas",
    "per_replica_batch_size",
    "global_batch_size",
    "precision",
    "steps",
    "epochs",
    "metrics",
    "wall_seconds",
}

# A linear user model for 0-255 images: like the built-in models, it rescales its pixels itself.
RESCALED_FLAT_MODEL = """
import keras

def flat(*, input_shape, num_classes):
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(keras.layers.Rescaling(1.0 / 255)(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))
"""


@pytest.mark.slow
def test_the_cli_trains_the_embedded_default_from_outside_the_repository(outside_repo):
    result = tfkit_process(["tfkit.train"], cwd=outside_repo)
    assert result.returncode == 0, result.stderr
    workdir = outside_repo / "runs" / "digits"
    summary = json.loads((workdir / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["status"] == "completed"
    assert (summary["strategy"], summary["replicas"], summary["precision"]) == ("one_device", 1, "float32")
    assert summary["metrics"]["accuracy"] >= 0.95
    assert summary["steps"] == 15 * (1437 // 64)
    assert f"accuracy {summary['metrics']['accuracy']:.4f}" in result.stdout.splitlines()[-1]
    assert sum(line.startswith("epoch ") for line in result.stdout.splitlines()) == 15

    with (workdir / "history.csv").open() as handle:
        history = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in history] == list(range(1, 16))
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "examples_per_second"} <= set(history[0])
    assert config_lib.load(workdir / "config.yaml") == config_lib.load(DIGITS_CONFIG)

    train_logs = workdir / "logs" / "train"
    for tag in ("loss", "learning_rate", "examples_per_second", "step_time_ms", "host_rss_mb", "device_peak_mb"):
        assert read_scalars(train_logs, tag), tag
    assert max(read_scalars(train_logs, "loss")) == summary["steps"]
    assert read_scalars(workdir / "logs" / "eval", "accuracy")[summary["steps"]] == pytest.approx(
        summary["metrics"]["accuracy"]
    )
    assert tf.train.latest_checkpoint(str(workdir / "checkpoints")).endswith(f"ckpt-{summary['steps']}")


def test_the_python_api_returns_the_summary_without_exiting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    summary = tfkit.train.run("digits", overrides=["train.epochs=2"])
    assert summary["status"] == "completed"
    assert summary["epochs"] == 2
    assert json.loads((tmp_path / "runs" / "digits" / "summary.json").read_text()) == summary


def test_the_python_api_takes_a_dict_of_keys(tmp_path):
    digits = config_lib.to_dict(config_lib.load(DIGITS_CONFIG))
    digits["train"] = {"epochs": 1, "per_replica_batch_size": 32, "steps_per_execution": 4}
    summary = tfkit.train.run(digits, workdir=tmp_path / "run")
    assert (summary["global_batch_size"], summary["steps"]) == (32, 1437 // 32)


def test_a_user_model_from_a_python_file(tmp_path):
    model = f"model={model_file(tmp_path, RESCALED_FLAT_MODEL)}:flat"
    summary = tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "run", overrides=[model, "train.epochs=3"])
    assert summary["metrics"]["accuracy"] > 0.5


def test_a_keras_application_that_cannot_take_the_input_says_so(tmp_path):
    with pytest.raises(UserError, match=r"keras.applications.MobileNetV3Small cannot be built for input \(8, 8, 1\)"):
        tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "run", overrides=["model=MobileNetV3Small"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "train.epoch=3"], "tfkit: error: config key 'train.epoch' is unknown; expected one of:"),
        (["--set", "data.train=/nowhere"], "tfkit: error: data folder '/nowhere' does not exist"),
        (["--config", "missing.yaml"], "tfkit: error: config file 'missing.yaml' does not exist"),
        (["--strategy", "fast"], "tfkit: error: argument --strategy: invalid choice: 'fast' (choose from"),
        (["--set", "model=nothing_like_it"], "tfkit: error: config key 'model.name': received 'nothing_like_it'"),
    ],
)
def test_bad_input_at_the_cli_exits_2_with_one_line_and_writes_nothing(outside_repo, args, expected):
    result = tfkit_process(["tfkit.train", *args], cwd=outside_repo)
    assert result.returncode == 2
    lines = stderr_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(expected)
    assert not (outside_repo / "runs" / "digits" / "summary.json").exists()


@pytest.mark.slow
def test_cpu_replicas_2_at_the_cli_runs_mirrored_and_says_so(outside_repo):
    result = tfkit_process(
        ["tfkit.train", "--cpu_replicas", "2", "--set", "train.epochs=2", "--workdir", "two"], cwd=outside_repo
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((outside_repo / "two" / "summary.json").read_text())
    assert (summary["strategy"], summary["replicas"]) == ("mirrored", 2)
    assert (summary["per_replica_batch_size"], summary["global_batch_size"]) == (32, 64)
