"""rewrite on logs of the four common writers: the events of a window, as written, plus the run-level metadata."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from tbparse import SummaryReader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import api as hp
from tensorboardX import SummaryWriter

from tfkit import tb
from tfkit.errors import UserError
from tfkit.tb import files

STEPS = 10
WINDOW = (4, 7)
RUN_LEVEL_TAGS = {"keras", "_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"}
KINDS = ("scalars", "tensors", "histograms", "images", "text")


@pytest.fixture(scope="module")
def tensorboardx_logs(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("tensorboardx")
    writer = SummaryWriter(str(logdir))
    for step in range(STEPS):
        writer.add_scalar("loss/train", 1.0 / (step + 1), step)
        writer.add_scalar("lr", 0.1 * 0.9**step, step)
        writer.add_histogram("weights", np.arange(6.0) + step, step)
        writer.add_image("sample", np.full((3, 2, 2), step / STEPS), step)
        writer.add_text("note", f"step {step}", step)
    writer.add_hparams({"lr": 0.1, "batch": 4}, {"hparam/accuracy": 0.5})
    writer.close()
    return logdir


@pytest.fixture(scope="module")
def tf1_logs(tmp_path_factory):
    """TF1's FileWriter: a graph, classic scalars and histograms, and text whose metadata is on its first event only."""
    logdir = tmp_path_factory.mktemp("tf1")
    graph = tf.Graph()
    with graph.as_default():
        value = tf.compat.v1.placeholder(tf.float32, [])
        tf.compat.v1.summary.scalar("loss", value)
        tf.compat.v1.summary.text("note", tf.strings.as_string(value))
        tf.compat.v1.summary.histogram("weights", tf.stack([value, value + 1.0]))
        tf.compat.v1.summary.image("sample", tf.fill([1, 2, 2, 1], value / STEPS))
        merged = tf.compat.v1.summary.merge_all()
        with tf.compat.v1.Session(graph=graph) as session:
            writer = tf.compat.v1.summary.FileWriter(str(logdir), graph=graph)
            for step in range(STEPS):
                writer.add_summary(session.run(merged, {value: float(step)}), step)
            writer.close()
    return logdir


@pytest.fixture(scope="module")
def tf2_logs(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("tf2")
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        hp.hparams_config(hparams=[hp.HParam("lr", hp.RealInterval(0.001, 1.0))], metrics=[hp.Metric("loss")])
        hp.hparams({"lr": 0.1})
        for step in range(STEPS):
            tf.summary.scalar("loss", 1.0 / (step + 1), step=step)
            tf.summary.histogram("weights", np.arange(6.0) + step, step=step)
            tf.summary.image("sample", np.full((1, 2, 2, 1), step / STEPS), step=step)
            tf.summary.text("note", f"step {step}", step=step)
    writer.close()
    return logdir


@pytest.fixture(scope="module")
def keras_logs(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("keras")
    x = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    callback = keras.callbacks.TensorBoard(str(logdir), histogram_freq=1, update_freq="batch")
    model.fit(x, x[:, :1], validation_split=0.25, epochs=STEPS, batch_size=4, verbose=0, callbacks=[callback])
    return logdir


WRITERS = ["tensorboardx_logs", "tf1_logs", "tf2_logs", "keras_logs"]


def records(logdir):
    return {record for path in files.event_files(logdir) for record in files.read_records(path)}


def read(logdir, kind):
    table = getattr(SummaryReader(str(logdir), pivot=False, extra_columns={"dir_name", "wall_time"}), kind)
    if not len(table):
        return table
    table = table.astype({"value": str}) if kind in ("scalars", "tensors", "text") else table
    return table.map(lambda cell: repr(cell) if isinstance(cell, np.ndarray) else cell).reset_index(drop=True)


def in_window(table):
    """The rows of a step in the window, and those of run-level tags (Keras' model graph, hparams) at any step."""
    if not len(table):
        return table
    kept = (table["step"] >= WINDOW[0]) & (table["step"] <= WINDOW[1]) | table["tag"].isin(RUN_LEVEL_TAGS)
    return table[kept].reset_index(drop=True)


@pytest.mark.parametrize("writer", WRITERS)
def test_a_window_keeps_the_events_in_it_as_written_and_the_run_level_metadata(writer, request, tmp_path):
    logdir = request.getfixturevalue(writer)
    kept = tmp_path / "kept"
    tb.rewrite(logdir, kept, steps=WINDOW)
    for kind in KINDS:  # tbparse: each kind of the source, in its own encoding, restricted to the window
        pd.testing.assert_frame_equal(read(kept, kind), in_window(read(logdir, kind)), obj=kind)
    pd.testing.assert_frame_equal(
        SummaryReader(str(kept), pivot=False).hparams, SummaryReader(str(logdir), pivot=False).hparams
    )
    assert len(read(kept, "scalars")) + len(read(kept, "tensors")) > 0
    # Every kept record is a source record, byte for byte, but for a tag's carried plugin metadata.
    source = records(logdir)
    for data in records(kept) - source:
        event = event_pb2.Event.FromString(data)
        for value in event.summary.value:
            value.ClearField("metadata")
        assert any(event == event_pb2.Event.FromString(original) for original in source)
    for path in files.event_files(kept):
        events = [event_pb2.Event.FromString(data) for data in files.read_records(path)]
        steps = {event.step for event in events if event.HasField("summary") and not _run_level(event)}
        assert steps <= set(range(WINDOW[0], WINDOW[1] + 1))
        assert sum(event.HasField("file_version") for event in events) == 1


def _run_level(event):
    return all(
        value.metadata.plugin_data.plugin_name in ("hparams", "graph_keras_model") for value in event.summary.value
    )


EVERYTHING = {"tensors": 0, "images": 0, "histograms": 0, "scalars": 0}  # no sampling
READERS = {"scalars": "Scalars", "histograms": "Histograms", "images": "Images", "tensors": "Tensors"}


@pytest.mark.parametrize("writer", WRITERS)
def test_tensorboards_legacy_accumulator_reads_the_window_as_it_read_the_source(writer, request, tmp_path):
    logdir = request.getfixturevalue(writer)
    tb.rewrite(logdir, tmp_path / "kept", steps=WINDOW)
    for run in {files.run_name(logdir, path) for path in files.event_files(logdir)}:
        before = EventAccumulator(str(logdir / run), size_guidance=EVERYTHING).Reload()
        after = EventAccumulator(str(tmp_path / "kept" / run), size_guidance=EVERYTHING).Reload()
        assert (after.Tags()["graph"], after.Tags()["meta_graph"]) == (
            before.Tags()["graph"],
            before.Tags()["meta_graph"],
        )
        for kind, method in READERS.items():
            assert "__run_graph__" not in after.Tags()[kind]
            for tag in before.Tags()[kind]:
                run_level = tag in RUN_LEVEL_TAGS
                expected = [e for e in getattr(before, method)(tag) if run_level or WINDOW[0] <= e.step <= WINDOW[1]]
                kept = getattr(after, method)(tag) if tag in after.Tags()[kind] else []
                assert kept == expected, (run, kind, tag)


def test_classic_histograms_keep_their_sums_and_images_stay_images(tensorboardx_logs, tmp_path):
    tb.rewrite(tensorboardx_logs, tmp_path / "kept", steps=WINDOW)
    accumulator = EventAccumulator(str(tmp_path / "kept"), size_guidance=EVERYTHING).Reload()
    histograms = accumulator.Histograms("weights")
    assert [event.step for event in histograms] == list(range(WINDOW[0], WINDOW[1] + 1))
    assert [event.histogram_value.sum for event in histograms] == [15.0 + 6 * step for step in range(4, 8)]
    assert [event.step for event in accumulator.Images("sample")] == list(range(4, 8))
    assert [event.step for event in accumulator.Scalars("loss/train")] == list(range(4, 8))


def test_tf1_text_keeps_its_plugin_metadata_when_its_first_event_is_dropped(tf1_logs, tmp_path):
    tb.rewrite(tf1_logs, tmp_path / "kept", steps=WINDOW)
    text = SummaryReader(str(tmp_path / "kept"), pivot=False).text
    assert list(text["step"]) == list(range(4, 8)) and list(text["value"]) == [f"{s}.000000" for s in range(4, 8)]


def test_keras_model_graph_and_hparams_survive_a_window_that_excludes_step_0(keras_logs, tf2_logs, tmp_path):
    tb.rewrite(keras_logs, tmp_path / "keras", steps=WINDOW)
    assert "keras" in EventAccumulator(str(tmp_path / "keras" / "train")).Reload().Tags()["tensors"]
    tb.rewrite(tf2_logs, tmp_path / "tf2", steps=WINDOW)
    assert set(SummaryReader(str(tmp_path / "tf2"), pivot=False).hparams["tag"]) == {"lr"}


def test_a_tag_filter_keeps_the_other_values_of_an_event_as_written(tf1_logs, tmp_path):
    tb.rewrite(tf1_logs, tmp_path / "kept", tags="^note$", steps=WINDOW)
    accumulator = EventAccumulator(str(tmp_path / "kept"), size_guidance={"tensors": 0}).Reload()
    assert accumulator.Tags()["scalars"] == [] and accumulator.Tags()["tensors"] == ["note"]
    assert accumulator.SummaryMetadata("note").plugin_data.plugin_name == "text"
    assert [event.step for event in accumulator.Tensors("note")] == list(range(4, 8))


def test_an_in_place_trim_is_refused_and_an_existing_out_is_never_appended_to(tmp_path):
    logdir = tmp_path / "logs"
    writer = SummaryWriter(str(logdir))
    for epoch in range(156):
        writer.add_scalar("epoch_loss", 1.0 / (epoch + 1), epoch)
    writer.close()
    before = {path: path.read_bytes() for path in files.event_files(logdir)}
    with pytest.raises(UserError, match="overlaps the input"):
        tb.rewrite(logdir, logdir, steps=(81, 100))
    with pytest.raises(UserError, match="overlaps the input"):
        tb.rewrite(logdir, logdir / "kept", steps=(81, 100), force=True)
    assert {path: path.read_bytes() for path in files.event_files(logdir)} == before
    tb.rewrite(logdir, tmp_path / "kept", steps=(81, 100))
    with pytest.raises(UserError, match="already exists"):
        tb.rewrite(logdir, tmp_path / "kept", steps=(81, 100))
    tb.rewrite(logdir, tmp_path / "kept", steps=(81, 100), force=True)
    assert list(tb.scalars(tmp_path / "kept")["step"]) == list(range(81, 101))


def test_event_files_are_found_as_tensorboard_finds_them(tmp_path):
    for name in ("events.out.tfevents", "run.tfevents.log"):
        writer = SummaryWriter(str(tmp_path / "made" / name))
        writer.add_scalar("loss", 0.5, 3)
        writer.close()
        (made,) = files.event_files(tmp_path / "made" / name)
        (tmp_path / "logs" / name).mkdir(parents=True)
        made.rename(tmp_path / "logs" / name / name)
    assert [path.name for path in tb.event_files(tmp_path / "logs")] == ["events.out.tfevents", "run.tfevents.log"]
    tb.rewrite(tmp_path / "logs", tmp_path / "kept")
    assert sorted(path.name for path in tb.event_files(tmp_path / "kept")) == [
        "events.out.tfevents",
        "run.tfevents.log",
    ]
    assert len(tb.scalars(tmp_path / "kept")) == len(tb.scalars(tmp_path / "logs")) == 2
