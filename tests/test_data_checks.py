"""The checks at training start: a schema against its shards and first records, labels, and NaN/inf values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from tfkit import config as config_lib
from tfkit import data, records, recovery
from tfkit.data import checks
from tfkit.errors import UserError

FEATURES = {
    "x": records.Feature(dtype="float32", shape=(3,), encoding="raw"),
    "label": records.Feature(dtype="int64", shape=(), encoding="int64", num_classes=4),
}


def split(folder, *, count=20, nan_at=(), label=lambda index: index % 4, features=FEATURES):
    rows = []
    for index in range(count):
        x = np.full(3, index, np.float32)
        if index in nan_at:
            x[1] = np.nan
        rows.append({"x": x, "label": np.int64(label(index))})
    records.write_split(rows, folder, split="train", features=features, num_shards=2)
    return str(folder)


def config(folder, **overrides):
    return config_lib.DataConfig(train=folder, features="x", label="label", **overrides)


def edit_schema(folder, change):
    path = f"{folder}/schema.json"
    with open(path) as handle:
        body = json.load(handle)
    change(body)
    with open(path, "w") as handle:
        json.dump(body, handle)


def test_clean_data_passes_and_nan_counted_by_write_is_refused_naming_feature_count_and_first_record(tmp_path):
    clean = split(tmp_path / "clean")
    assert data.load_schema(clean, config(clean)).records == 20
    dirty = split(tmp_path / "dirty", nan_at=(5, 12))
    # Round robin over 2 shards: example 12 is shard 0's record 6, the first in split order (example 5 is 10 + 2).
    with pytest.raises(UserError, match=r"feature 'x' of .* holds 2 NaN/inf value\(s\), the first in record 6;"):
        data.load_schema(dirty, config(dirty))
    assert data.load_schema(dirty, config(dirty, allow_nonfinite=True)).records == 20


def test_foreign_data_without_counts_is_checked_on_its_first_records(tmp_path):
    folder = split(tmp_path / "foreign", nan_at=(7,))
    edit_schema(folder, lambda body: body["features"]["x"].pop("nonfinite"))
    first = r"the first in '.*train-00001-of-00002.tfrecord' record 3"
    with pytest.raises(UserError, match=rf"holds 1 NaN/inf value\(s\), {first}"):
        data.load_schema(folder, config(folder))
    assert data.load_schema(folder, config(folder, allow_nonfinite=True)).records == 20


@pytest.mark.parametrize(
    ("label", "classes", "message"),
    [
        (lambda index: -1 if index == 4 else 0, None, r"train-00000-of-00002.tfrecord' record 2: label 'label' is -1"),
        (lambda index: index, 4, r"record 2: label 'label' is 4; expected \[0, 4\)"),
    ],
)
def test_labels_outside_the_classes_are_named_with_their_record(tmp_path, label, classes, message):
    features = {**FEATURES, "label": records.Feature("int64", (), "int64", num_classes=classes)}
    folder = split(tmp_path / "labels", label=label, features=features)
    with pytest.raises(UserError, match=message):
        data.load_schema(folder, config(folder))


def test_the_models_classes_bound_the_labels_when_given(tmp_path):
    folder = split(tmp_path / "labels")
    with pytest.raises(UserError, match=r"label 'label' is 3; expected \[0, 3\)"):
        data.load_schema(folder, config(folder), num_classes=3)


EXTRA = {"dtype": "float32", "shape": [], "encoding": "raw"}
MISMATCHES = {  # schema.json edit -> what the one line says
    "features.extra=" + json.dumps(EXTRA): "lacks feature 'extra', which its schema lists",
    'features.x.dtype="float64"': r"feature 'x' holds 12 bytes; the schema says float64 \[3\], 24 bytes",
    "features.x.shape=[4]": r"feature 'x' holds 12 bytes; the schema says float32 \[4\], 16 bytes",
    "features.label.shape=[2]": r"feature 'label' holds 1 value\(s\); the schema says 2 integers",
    "records=21": "says 21 records, and its shards add up to 20",
    "shards.1.records=11;records=21": r"train-00001-of-00002.tfrecord' holds 10 records; the schema of .* says 11",
    'shards.1.file="train-00001-of-00003.tfrecord"': "train-00001-of-00003.tfrecord' is listed in the schema",
    "shards=[]": "lists no shards",
}


def apply(body, edits):
    """Applies ``a.b.c=JSON`` edits, separated by ``;``, to a schema's body."""
    for edit in edits.split(";"):
        path, _, value = edit.partition("=")
        *parents, last = path.split(".")
        target = body
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[int(last) if isinstance(target, list) else last] = json.loads(value)


@pytest.mark.parametrize(("edits", "message"), MISMATCHES.items())
def test_a_schema_that_does_not_match_the_files_is_refused_at_start(tmp_path, edits, message):
    folder = split(tmp_path / "mismatch")
    edit_schema(folder, lambda body: apply(body, edits))
    with pytest.raises(UserError, match=message):
        data.load_schema(folder, config(folder))


def test_in_graph_labels_fail_with_the_prefix_the_trainer_maps():
    checked = checks.assert_labels(tf.constant([0, 3, 1], tf.int64), 4)
    assert checked.numpy().tolist() == [0, 3, 1]
    for bad in ([0, 4], [-1, 0]):
        with pytest.raises(
            tf.errors.InvalidArgumentError, match=f"{checks.LABEL_ERROR_PREFIX} a label lies outside"
        ) as caught:
            checks.assert_labels(tf.constant(bad, tf.int64), 4)
        assert str(recovery.label_error(caught.value)) == (
            "a label lies outside [0, 4); expected class numbers 0 to 3. Fix the labels, or set model.num_classes."
        )


def test_the_in_graph_checks_are_stateless_so_tf_data_runs_them_on_its_fast_executor():
    graph = (
        tf.function(lambda y, w: (checks.assert_labels(y, 4), checks.assert_weights(w, "w")))
        .get_concrete_function(tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.float32))
        .graph
    )
    stateful = [op.type for op in graph.get_operations() if op.op_def is not None and op.op_def.is_stateful]
    assert stateful == []


def test_a_corrupt_record_is_left_to_the_reader_and_the_records_before_it_are_checked(tmp_path):
    unbounded = {**FEATURES, "label": records.Feature("int64", (), "int64")}
    folder = split(tmp_path / "corrupt", label=lambda index: 9 if index == 3 else 0, features=unbounded)
    shard = tmp_path / "corrupt" / "train-00000-of-00002.tfrecord"
    raw = bytearray(shard.read_bytes())
    raw[-10] ^= 0xFF  # the last record of shard 0, after the records the check reads first
    shard.write_bytes(bytes(raw))
    schema = data.load_schema(folder, config(folder))  # no count mismatch claimed for a shard cut short by damage
    assert schema.records == 20
    edit_schema(folder, lambda body: body["features"]["label"].update(num_classes=4))
    with pytest.raises(UserError, match=r"train-00001-of-00002.tfrecord' record 1: label 'label' is 9"):
        data.load_schema(folder, config(folder))


def test_the_first_records_are_fewer_when_they_hold_more_bytes_than_the_budget(tmp_path):
    # Large records (big images, on gs://) are not all fetched at start: the check reads a budget of bytes.
    folder = split(tmp_path / "late", count=40, label=lambda index: 7 if index == 12 else 1)
    schema = records.read_schema(folder)
    size = len(next(iter(records.read_records(schema.files(folder)[0]))))
    with pytest.raises(UserError, match=r"train-00000-of-00002.tfrecord' record 6: label 'label' is 7"):
        checks.check_first_records(folder, schema, config(folder), num_classes=4)
    checks.check_first_records(folder, schema, config(folder), num_classes=4, byte_limit=5 * size)  # records 0-4
    first = split(tmp_path / "first", count=4, label=lambda index: 7 if index == 0 else 1)
    with pytest.raises(UserError, match=r"record 0: label 'label' is 7"):  # one record at least, whatever the budget
        checks.check_first_records(first, records.read_schema(first), config(first), num_classes=4, byte_limit=1)


def test_the_reader_stops_at_a_label_past_the_first_records_with_the_prefix(tmp_path):
    folder = split(tmp_path / "late", count=40, label=lambda index: 7 if index == 37 else 1)
    schema = records.read_schema(folder)
    checks.check_first_records(folder, schema, config(folder), limit=10)  # the bad one lies past the first records
    make = data.dataset_fn(folder, schema, config(folder), per_replica_batch_size=4, training=False, seed=0, epoch=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=checks.LABEL_ERROR_PREFIX) as raised:
        list(make(tf.distribute.InputContext()))
    # The trainer's line is the check's message alone, without TensorFlow's condition and values after it.
    line = str(recovery.label_error(raised.value))
    assert line == (
        "a label lies outside [0, 4); expected class numbers 0 to 3. Fix the labels, or set model.num_classes."
    )


def test_foreign_float_list_features_pass_the_first_record_checks(tmp_path):
    # Records written by TensorFlow (a competition's .tfrec files) often hold FloatList features.
    path = tmp_path / "foreign.tfrec"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for index in range(6):
            feature = {
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=[index, 0.5, 1.0])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[index % 4])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    glob = str(tmp_path / "*.tfrec")
    schema = data.load_schema(glob, config(glob))
    assert schema.features["x"].encoding == "float"
    assert schema.records == 6


def test_a_record_that_is_no_example_is_named_at_start(tmp_path):
    folder = split(tmp_path / "garbage")
    shard = tmp_path / "garbage" / "train-00000-of-00002.tfrecord"
    kept = list(records.read_records(str(shard)))
    with tf.io.TFRecordWriter(str(shard)) as writer:
        writer.write(kept[0])
        writer.write(b"\x0a\xff\x01garbage")  # field 1 claims 255 bytes and holds 7
        for record in kept[2:]:
            writer.write(record)
    before = shard.read_bytes()
    with pytest.raises(UserError, match=r"train-00000-of-00002.tfrecord' record 1: a record is not a tf.train.Example"):
        data.load_schema(folder, config(folder))
    assert shard.read_bytes() == before


def test_placeholder_labels_in_a_test_split_are_not_refused_as_they_are_elsewhere(tmp_path):
    # Competitions ship test files with a label of -1, or NaN targets: predictions never read them.
    classes = split(tmp_path / "classes", label=lambda index: -1)
    assert data.load_schema(classes, config(classes), split="test").records == 20
    with pytest.raises(UserError, match=r"record 0: label 'label' is -1; expected \[0, 4\)"):
        data.load_schema(classes, config(classes), split="eval")
    features = {"x": FEATURES["x"], "label": records.Feature(dtype="float32", shape=(), encoding="raw")}
    rows = [{"x": np.full(3, index, np.float32), "label": np.float32(np.nan)} for index in range(6)]
    records.write_split(rows, tmp_path / "targets", split="test", features=features, num_shards=2)
    targets = str(tmp_path / "targets")
    assert data.load_schema(targets, config(targets), split="test").records == 6
    with pytest.raises(UserError, match=r"feature 'label' .* holds 6 NaN/inf value\(s\), the first in record 0"):
        data.load_schema(targets, config(targets), split="eval")
