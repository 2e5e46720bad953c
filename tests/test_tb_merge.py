"""merge: restarted counters (0- and 1-based), resumed sessions, tag families and SessionLog events."""

from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboardX import SummaryWriter

from tfkit import tb
from tfkit.tb import files


def session(folder, steps, *, tags=("loss",), value=0.0):
    writer = SummaryWriter(str(folder))
    for step in steps:
        for tag in tags:
            writer.add_scalar(tag, value + step, step)
    writer.close()
    return folder


def tf1_session(folder, steps):
    """A TF1 Supervisor's log: a SessionLog START at the session's first step, then classic scalars."""
    folder.mkdir(parents=True)
    events = [
        event_pb2.Event(wall_time=1.0, file_version="brain.Event:2"),
        event_pb2.Event(wall_time=2.0, step=steps[0], session_log=event_pb2.SessionLog(status=1)),
        *(
            event_pb2.Event(
                wall_time=3.0 + step,
                step=step,
                summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="loss", simple_value=step)]),
            )
            for step in steps
        ),
    ]
    (folder / "events.out.tfevents.1.host").write_bytes(b"".join(files.frame(e.SerializeToString()) for e in events))
    return folder


def steps_of(logdir, tag="loss"):
    return list(tb.scalars(logdir).query("tag == @tag")["step"])


@pytest.mark.parametrize("first_step", [0, 1])
def test_a_restarted_counter_continues_with_one_step_per_point(first_step, tmp_path):
    one = session(tmp_path / "one", range(first_step, first_step + 100))
    two = session(tmp_path / "two", range(first_step, first_step + 100))
    (first, second) = tb.merge([one, two], tmp_path / "merged")
    assert (first.families[0].kind, second.families[0].kind, second.families[0].shift) == ("first", "restarted", 100)
    assert steps_of(tmp_path / "merged") == list(range(first_step, first_step + 200))


def test_a_resumed_session_wins_from_its_first_step_on(tmp_path):
    one = session(tmp_path / "one", range(0, 96), value=0.0)
    two = session(tmp_path / "two", range(80, 156), value=1000.0)
    (_, second) = tb.merge([one, two], tmp_path / "merged")
    assert second.families[0].kind == "resumed" and second.families[0].shift == 0
    merged = tb.scalars(tmp_path / "merged")
    assert list(merged["step"]) == list(range(156))
    assert list(merged["value"]) == [float(step) for step in range(80)] + [1000.0 + step for step in range(80, 156)]


def test_each_tag_family_is_shifted_by_its_own_counter(tmp_path):
    """Keras: epoch_* count epochs, batch_* count optimizer steps; neither pushes the other to the right."""
    tags = ("epoch_loss", "epoch_accuracy")
    one = session(tmp_path / "one" / "train", range(5), tags=tags).parent
    session(tmp_path / "one" / "batches", range(1, 51), tags=("batch_loss",))
    two = session(tmp_path / "two" / "train", range(5), tags=tags).parent
    session(tmp_path / "two" / "batches", range(1, 51), tags=("batch_loss",))
    (_, second) = tb.merge([one, two], tmp_path / "merged")
    assert {(a.family, a.shift) for a in second.families} == {("epoch", 5), ("iteration", 50)}
    merged = tb.scalars(tmp_path / "merged")
    assert list(merged.query("tag == 'epoch_loss'")["step"]) == list(range(10))
    assert list(merged.query("tag == 'batch_loss'")["step"]) == list(range(1, 101))


def test_session_logs_move_with_their_session_so_tensorboard_keeps_both(tmp_path):
    one = tf1_session(tmp_path / "one", range(50))
    two = tf1_session(tmp_path / "two", range(50))
    tb.merge([one, two], tmp_path / "merged")
    accumulator = EventAccumulator(str(tmp_path / "merged"), size_guidance={"scalars": 0}, purge_orphaned_data=True)
    assert [event.step for event in accumulator.Reload().Scalars("loss")] == list(range(100))
    starts = [
        event.step
        for path in files.event_files(tmp_path / "merged")
        for event in map(event_pb2.Event.FromString, files.read_records(path))
        if event.HasField("session_log")
    ]
    assert starts == [0, 50]


def test_merge_writes_one_file_per_run_with_one_file_version_and_records_as_written(tmp_path):
    one = session(tmp_path / "one", range(10))
    two = session(tmp_path / "two", range(20, 30))
    tb.merge([one, two], tmp_path / "merged")
    (path,) = files.event_files(tmp_path / "merged")
    merged = list(files.read_records(path))
    sources = [record for logdir in (one, two) for p in files.event_files(logdir) for record in files.read_records(p)]
    assert merged == sources[:1] + [record for record in sources[1:] if b"brain.Event" not in record]


def test_a_fixed_offset_shifts_session_i_by_i_times_n(tmp_path):
    one = session(tmp_path / "one", range(10))
    two = session(tmp_path / "two", range(10))
    tb.merge([one, two], tmp_path / "merged", offset="1000")
    assert steps_of(tmp_path / "merged") == list(range(10)) + list(range(1000, 1010))
