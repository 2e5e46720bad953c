from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    DIGITS_CONFIG,
    file_hashes,
    free_port,
    model_file,
    saved_tensors,
    stderr_lines,
    tfkit_process,
)

import tfkit.train
from tfkit.errors import UserError

BASE = ["train.epochs=3", "checkpoint.every_steps=5"]
COMPARED = ("epoch", "step", "loss", "accuracy", "val_loss", "val_accuracy")


def history(workdir):
    with (workdir / "history.csv").open() as handle:
        return [{key: row[key] for key in COMPARED} for row in csv.DictReader(handle)]


def logged_steps(workdir, tag="loss"):
    steps = []
    for path in sorted((workdir / "logs" / "train").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            steps += [event.step for value in event.summary.value if value.tag == tag]
    return steps


DROPOUT_MODEL = """
import keras

def dropout_mlp(*, input_shape, num_classes):
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(keras.layers.Rescaling(1.0 / 255)(inputs))  # 0-255 pixels, as digits_cnn takes
    x = keras.layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(keras.layers.Dropout(0.5)(x)))
"""


@pytest.mark.parametrize("model", ["digits_cnn", "dropout"])
def test_a_run_interrupted_anywhere_and_resumed_ends_bit_identical(tmp_path, model):
    base = list(BASE)
    if model == "dropout":  # random state too: dropout masks must continue where they were
        base.append(f"model={model_file(tmp_path, DROPOUT_MODEL)}:dropout_mlp")
    straight = tmp_path / "straight"
    reference = tfkit.train.run(DIGITS_CONFIG, workdir=straight, overrides=base)
    interrupted = tmp_path / "interrupted"
    # Mid-epoch, at the epoch boundary (step 22), right after a checkpoint (step 25).
    for stop in (7, 22, 25):
        summary = tfkit.train.run(
            DIGITS_CONFIG, workdir=interrupted, overrides=[*base, f"faults.preempt_at_step={stop}"]
        )
        assert (summary["status"], summary["stop_reason"], summary["steps"]) == ("stopped", "preempted", stop)
    resumed = tfkit.train.run(DIGITS_CONFIG, workdir=interrupted, overrides=base)
    assert resumed["status"] == "completed" and resumed["steps"] == reference["steps"]
    assert resumed["metrics"] == reference["metrics"]
    assert history(interrupted) == history(straight)

    expected, got = saved_tensors(straight), saved_tensors(interrupted)
    assert expected.keys() == got.keys() and len(expected) >= 20
    for name in expected:
        assert expected[name].tobytes() == got[name].tobytes(), name  # bitwise, weights and optimizer state

    # TensorBoard: the loss is logged once per compiled call, so its points fall where calls ended (a stop ends one
    # early); they never repeat or go back, and never leave a gap wider than one call. Epoch scalars match exactly.
    steps = logged_steps(interrupted)
    assert steps == sorted(set(steps)) and steps[-1] == reference["steps"]
    assert max(np.diff([0, *steps])) <= 8  # the digits config's steps_per_execution
    assert (
        logged_steps(interrupted, "examples_per_second")
        == logged_steps(straight, "examples_per_second")
        == [22, 44, 66]
    )


def test_rerunning_a_completed_run_does_not_train_again(tmp_path, capsys):
    first = tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "run", overrides=["train.epochs=1"])
    rows = history(tmp_path / "run")
    again = tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "run", overrides=["train.epochs=1"])
    assert again == first
    assert history(tmp_path / "run") == rows
    assert "this run already completed 22 steps" in capsys.readouterr().out


def test_resuming_with_another_model_is_refused_and_restart_keeps_the_old_run(tmp_path):
    run = tmp_path / "run"
    tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=["train.epochs=2", "faults.preempt_at_step=10"])
    other = ["train.epochs=2", f"model={model_file(tmp_path)}:flat"]
    before = file_hashes(run)
    with pytest.raises(UserError, match=r"holds checkpoints of another run \(model was 'digits_cnn', now '.*flat'\)"):
        tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=other)
    assert file_hashes(run) == before  # config.yaml too: a later export rebuilds the model it names
    broken = ["train.epochs=2", f"model={model_file(tmp_path, 'def flat(:', name='broken.py')}:flat"]
    with pytest.raises(UserError, match="does not parse"):
        tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=broken, restart=True)
    assert file_hashes(run) == before
    assert not list(tmp_path.glob("run.old-*"))  # moved aside only once the new run is checked
    summary = tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=other, restart=True)
    assert summary["status"] == "completed"
    (kept,) = tmp_path.glob("run.old-*")
    assert tf.train.latest_checkpoint(str(kept / "checkpoints")).endswith("ckpt-10")


@pytest.mark.slow
def test_sigterm_finishes_the_step_checkpoints_and_exits_75_then_the_rerun_completes(outside_repo):
    args = [sys.executable, "-m", "tfkit.train", "--workdir", "run", "--set", "train.epochs=8"]
    process = subprocess.Popen(args, cwd=outside_repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    history_file = outside_repo / "run" / "history.csv"
    deadline = time.monotonic() + 120
    while not history_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 75, err
    summary = json.loads((outside_repo / "run" / "summary.json").read_text())
    assert (summary["status"], summary["stop_reason"]) == ("stopped", "signal")
    assert 22 <= summary["steps"] < 8 * 22
    assert tf.train.latest_checkpoint(str(outside_repo / "run" / "checkpoints")).endswith(f"ckpt-{summary['steps']}")
    assert stderr_lines(subprocess.CompletedProcess(args, 75, "", err))[-1].startswith("tfkit: stopped: signal at step")

    rerun = tfkit_process(["tfkit.train", "--workdir", "run", "--set", "train.epochs=8"], cwd=outside_repo)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed at epoch {summary['steps'] // 22 + 1}, step {summary['steps']} of 176" in rerun.stdout
    assert json.loads((outside_repo / "run" / "summary.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_the_time_limit_stops_cleanly_with_exit_75_and_says_how_many_sessions_remain(outside_repo):
    args = ["tfkit.train", "--workdir", "run", "--set", "train.epochs=40"]
    stopped = tfkit_process([*args, "--time_limit", "12s"], cwd=outside_repo)
    assert stopped.returncode == 75, stopped.stderr
    assert "more session(s) of this length" in stopped.stdout
    summary = json.loads((outside_repo / "run" / "summary.json").read_text())
    assert (summary["status"], summary["stop_reason"]) == ("stopped", "time_limit")
    assert 0 < summary["steps"] < 40 * 22
    assert summary["wall_seconds"] < 12
    finished = tfkit_process(args, cwd=outside_repo)
    assert finished.returncode == 0, finished.stderr
    assert json.loads((outside_repo / "run" / "summary.json").read_text())["steps"] == 40 * 22


def newest_step(workdir):
    path = tf.train.latest_checkpoint(str(workdir / "checkpoints"))
    return int(path.rsplit("-", 1)[1]) if path else 0


KILLS = 12


@pytest.mark.slow
def test_kill_9_at_random_moments_never_leaves_the_workdir_unrestorable(tmp_path):
    # Checkpoints every 2 steps, so many kills land while one is being written. Each round waits until training
    # has moved past its starting checkpoint, then kills after a random moment. Every round must resume, and the run
    # must end with exactly the weights of a run that was never killed. After KILLS kills the last round runs to the
    # end: each round pays a TensorFlow start-up, so the rounds are counted, not left to the run's length.
    args = ["tfkit.train", "--set", "train.epochs=6", "--set", "checkpoint.every_steps=2"]
    reference = tfkit_process([*args, "--workdir", "straight"], cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    rng = np.random.default_rng(7)
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", *args, "--workdir", str(killed)]
    kills, starts = 0, []
    for _ in range(KILLS + 1):
        start = newest_step(killed)
        starts.append(start)
        process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while process.poll() is None and newest_step(killed) <= start and time.monotonic() < deadline:
            time.sleep(0.02)
        if process.poll() is None:
            time.sleep(float(rng.uniform(0.0, 0.3)))
        if process.poll() is None and kills < KILLS:
            process.kill()  # SIGKILL: no handler, no cleanup, possibly mid-save
            process.communicate()
            kills += 1
            continue
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]
        break
    else:
        pytest.fail("the run never completed")
    assert kills >= 10, kills
    assert starts == sorted(starts) and starts[-1] > starts[1] > 0  # every round resumed from further on
    expected, got = saved_tensors(tmp_path / "straight"), saved_tensors(killed)
    for name in expected:
        assert expected[name].tobytes() == got[name].tobytes(), name
    assert history(killed) == history(tmp_path / "straight")


def test_the_best_checkpoint_by_the_monitored_value_is_kept_apart(tmp_path):
    run = tmp_path / "run"
    summary = tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=["train.epochs=4", "checkpoint.keep=1"])
    rows = history(run)
    best_row = min(rows, key=lambda row: float(row["val_loss"]))
    best = tf.train.latest_checkpoint(str(run / "checkpoints" / "best"))
    assert best.endswith(f"ckpt-{best_row['step']}")
    assert float(tf.train.load_checkpoint(best).get_tensor("best/.ATTRIBUTES/VARIABLE_VALUE")) == pytest.approx(
        float(best_row["val_loss"])
    )
    assert summary["checkpoint_seconds"] > 0
    assert len(list((run / "checkpoints").glob("ckpt-*.index"))) == 1  # keep=1 for the newest


def test_a_monitor_that_is_not_measured_is_refused_at_load(tmp_path):
    with pytest.raises(UserError, match=r"'checkpoint.monitor': received 'val_f1'; expected one of loss, accuracy"):
        tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "run", overrides=["checkpoint.monitor=val_f1"])


@pytest.mark.slow
def test_sigterm_to_one_worker_stops_the_whole_cluster_at_one_step_and_it_resumes(tmp_path):
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    run = tmp_path / "run"

    def start(index):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "tfkit.train", "--workdir", str(run), "--set", "train.epochs=12"]
        return subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    processes = [start(0), start(1)]
    deadline = time.monotonic() + 180
    while not (run / "history.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    processes[1].send_signal(signal.SIGTERM)  # only one worker is told, as in a preemption
    outputs = [process.communicate(timeout=180) for process in processes]
    assert [process.returncode for process in processes] == [75, 75], [err[-1500:] for _, err in outputs]
    chief = json.loads((run / "summary.json").read_text())
    other = json.loads((run / "workers" / "worker-1" / "summary.json").read_text())
    assert chief["stop_reason"] == other["stop_reason"] == "signal"
    assert chief["steps"] == other["steps"] < 12 * 22

    processes = [start(0), start(1)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], [err[-1500:] for _, err in outputs]
    assert f"resumed at epoch {chief['steps'] // 22 + 1}, step {chief['steps']}" in outputs[0][0]
    first, second = saved_tensors(run), saved_tensors(run / "workers" / "worker-1")
    for name in first:
        assert first[name].tobytes() == second[name].tobytes(), name


def test_a_resume_may_split_the_same_global_batch_differently_and_says_so(tmp_path, capsys):
    run = tmp_path / "run"
    tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=["train.epochs=2", "faults.preempt_at_step=10"])
    summary = tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=["train.epochs=2", "train.grad_accum_steps=2"])
    assert (summary["status"], summary["global_batch_size"], summary["grad_accum_steps"]) == ("completed", 64, 2)
    assert "now split 32/replica x 2 accumulation (was 64 x 1)" in capsys.readouterr().out
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run / "checkpoints")))
    assert reader.get_tensor("batch/.ATTRIBUTES/VARIABLE_VALUE").tolist() == [32, 2]


def test_checkpoints_are_also_saved_by_time_within_an_epoch(tmp_path):
    run = tmp_path / "run"
    overrides = [
        "train.epochs=1",
        "train.steps_per_execution=2",
        "checkpoint.every_minutes=0.0001",
        "checkpoint.keep=50",
    ]
    tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=overrides)
    steps = sorted(int(path.stem.split("-")[1]) for path in (run / "checkpoints").glob("ckpt-*.index"))
    assert steps[-1] == 22 and len(steps) > 5  # every call outlasts 6 ms, so each is followed by a save
    assert all(step % 2 == 0 for step in steps)  # at call boundaries, never inside a compiled call
