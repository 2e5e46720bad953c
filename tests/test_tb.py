from __future__ import annotations

import collections

import keras
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import DIGITS_CONFIG, stderr_lines, tfkit_process
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

import tfkit.train
from tfkit import tb
from tfkit.errors import UserError


@pytest.fixture(scope="module")
def tfkit_logs(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tb") / "run"
    tfkit.train.run(DIGITS_CONFIG, workdir=workdir, overrides=["train.epochs=5", "train.steps_per_execution=1"])
    return workdir / "logs"


@pytest.fixture(scope="module")
def direct_logs(tmp_path_factory):
    """Logs written straight with tf.summary: scalars, histograms, images and text, in two run folders."""
    logdir = tmp_path_factory.mktemp("direct")
    rng = np.random.default_rng(0)
    for run in ("run_a", "run_b"):
        writer = tf.summary.create_file_writer(str(logdir / run))
        with writer.as_default():
            for step in range(0, 121):
                tf.summary.scalar("loss", 1.0 / (step + 1), step=step)
                tf.summary.scalar("accuracy", step / 120, step=step)
                if step % 10 == 0:
                    tf.summary.histogram("weights", rng.standard_normal(50), step=step)
                    tf.summary.image("sample", rng.uniform(size=(1, 4, 4, 1)), step=step)
                    tf.summary.text("note", f"step {step}", step=step)
        writer.close()
    # Classic scalars (simple_value), the way tensorboardX and TF1 write them, through tensorboard's own writer.
    classic = EventFileWriter(str(logdir / "run_classic"))
    for step in range(0, 121):
        value = summary_pb2.Summary.Value(tag="loss", simple_value=2.0 / (step + 1))
        classic.add_event(
            event_pb2.Event(step=step, wall_time=1.7e9 + step, summary=summary_pb2.Summary(value=[value]))
        )
    classic.close()
    return logdir


@pytest.fixture(scope="module")
def keras_logs(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("keras")
    x = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(
        x, x[:, :1], validation_split=0.25, epochs=6, verbose=0, callbacks=[keras.callbacks.TensorBoard(str(logdir))]
    )
    return logdir


def plugins_by_step(logdir):
    found = collections.defaultdict(set)
    for path in tb.event_files(logdir):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                found[event.step].add(value.metadata.plugin_data.plugin_name or value.WhichOneof("value"))
    return found


@pytest.mark.parametrize("logs", ["tfkit_logs", "direct_logs", "keras_logs"])
def test_export_rewrite_and_tbparse_round_trip_exactly(logs, request, tmp_path):
    logdir = request.getfixturevalue(logs)
    original = tb.scalars(logdir)
    assert len(original) > 10
    tb.rewrite(logdir, tmp_path / "copy")
    pd.testing.assert_frame_equal(tb.scalars(tmp_path / "copy"), original)  # values, steps, tags, wall times, runs
    rows = tb.export(logdir, tmp_path / "scalars.csv")
    exported = pd.read_csv(tmp_path / "scalars.csv", dtype={"run": str})
    assert rows == len(exported) == len(original)
    np.testing.assert_array_equal(exported["wall_time"].to_numpy(), original["wall_time"].to_numpy())
    np.testing.assert_array_equal(exported["value"].to_numpy(), original["value"].to_numpy())


def test_keep_steps_81_to_100_of_a_tfkit_run(tfkit_logs, tmp_path):
    tb.rewrite(tfkit_logs, tmp_path / "kept", steps=tb.parse_steps("81:100"))
    kept = tb.scalars(tmp_path / "kept")
    assert kept["step"].min() == 81 and kept["step"].max() == 100
    assert sorted(kept.query("run == 'train' and tag == 'loss'")["step"]) == list(range(81, 101))
    pd.testing.assert_frame_equal(kept, tb.scalars(tfkit_logs, steps=(81, 100)))


def test_tag_and_step_filters_keep_other_event_kinds_of_the_kept_steps(direct_logs, tmp_path):
    tb.rewrite(direct_logs, tmp_path / "kept", tags="loss|weights|sample|note", steps=tb.parse_steps("50:"))
    kept = tb.scalars(tmp_path / "kept")
    assert set(kept["tag"]) == {"loss"} and set(kept["run"]) == {"run_a", "run_b", "run_classic"}
    classic = kept.query("run == 'run_classic'")
    assert list(classic["step"]) == list(range(50, 121)) and classic["wall_time"].iloc[0] == 1.7e9 + 50
    assert kept["step"].min() == 50
    plugins = plugins_by_step(tmp_path / "kept")
    assert min(plugins) == 50
    assert {"histograms", "images", "text", "scalars"} <= plugins[60]
    assert plugins_by_step(direct_logs)[40] and 40 not in plugins


def test_keras_callback_logs_filter_by_epoch(keras_logs, tmp_path):
    tb.export(keras_logs, tmp_path / "epochs.json", tags="^epoch_loss$", steps=tb.parse_steps("2:3"))
    rows = pd.read_json(tmp_path / "epochs.json")
    assert sorted(rows["run"].unique()) == ["train", "validation"]
    assert sorted(rows["step"].unique()) == [2, 3] and set(rows["tag"]) == {"epoch_loss"}


def test_merging_sessions_whose_step_counter_restarted_gives_contiguous_steps(tmp_path):
    for session in ("one", "two"):
        writer = tf.summary.create_file_writer(str(tmp_path / session / "train"))
        with writer.as_default():
            for step in range(1, 51):
                tf.summary.scalar("loss", step / 100, step=step)
        writer.close()
    offsets = tb.merge([tmp_path / "one", tmp_path / "two"], tmp_path / "merged")
    steps = list(tb.scalars(tmp_path / "merged")["step"])
    assert offsets == [0, 50]
    assert steps == list(range(1, 101))  # contiguous, no duplicates


def test_merging_a_tfkit_run_whose_sessions_already_continue_leaves_steps_alone(tmp_path):
    run = tmp_path / "run"
    tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=["train.epochs=2", "faults.preempt_at_step=30"])
    first = tmp_path / "session1"
    import shutil

    shutil.copytree(run / "logs", first)
    tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=["train.epochs=2"])
    second = tmp_path / "session2"
    shutil.copytree(run / "logs", second)
    for path in tb.event_files(second):  # session 2's own files: drop the copy of session 1's
        if path.relative_to(second) in {p.relative_to(first) for p in tb.event_files(first)}:
            path.unlink()
    offsets = tb.merge([first, second], tmp_path / "merged")
    merged = tb.scalars(tmp_path / "merged").query("run == 'train' and tag == 'loss'")
    assert offsets == [0, 0]
    assert list(merged["step"]) == sorted(set(merged["step"])) and merged["step"].max() == 44


def test_the_dashboard_has_a_drawn_panel_for_each_kind_of_curve(tfkit_logs, direct_logs, tmp_path):
    boxes = tb.plot([tfkit_logs], tmp_path / "curves.png")
    image = matplotlib.image.imread(tmp_path / "curves.png")
    assert image.shape[:2] == (1500, 1000)
    assert len(boxes) == len(tb.PANELS)
    for (left, top, right, bottom), (title, _) in zip(boxes, tb.PANELS, strict=True):
        panel = image[top + 5 : bottom - 5, left + 5 : right - 5, :3]
        colored = (panel.max(axis=2) - panel.min(axis=2)) > 0.2  # curves are coloured; axes and text are grey
        assert colored.mean() > 0.002, title
    tb.plot([tfkit_logs, direct_logs], tmp_path / "two.png")  # runs overlaid, any writer


def test_bad_input_is_one_line(tmp_path):
    with pytest.raises(UserError, match=r"holds no events\.out\.tfevents"):
        tb.scalars(tmp_path)
    with pytest.raises(UserError, match="--steps received 'x:y'"):
        tb.parse_steps("x:y")
    result = tfkit_process(["tfkit.tb", "export", str(tmp_path / "none"), "--out", "a.csv"], cwd=tmp_path)
    assert result.returncode == 2 and len(stderr_lines(result)) == 1
    assert "log folder" in result.stderr
