"""Bad inputs to ``python -m tfkit.records`` and to training on bad data: one line, exit 2, every file unchanged.

Each case is a real process, as a user would run it. The records commands start without TensorFlow, so those cases
take a fraction of a second each; the training cases import TensorFlow and are marked slow.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import assert_refused, file_hashes, tfkit_process

from tfkit import records

ROWS = 64


def arrays(rows: int = ROWS, *, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((rows, 4)).astype(np.float32), "label": np.arange(rows) % 3}


def dataset(folder: Path, name: str = "data") -> Path:
    """A clean split, written as the command writes it, to be left unchanged by every refused command."""
    np.savez(folder / "clean.npz", **arrays())
    records.write(records.open_source([str(folder / "clean.npz")]), folder / name)
    return folder / name


def edit_schema(split: Path, change: Callable[[dict], None]) -> None:
    body = json.loads((split / "schema.json").read_text())
    change(body)
    (split / "schema.json").write_text(json.dumps(body))


# Each maker prepares files under the folder and returns the command's arguments.
def write_into_existing(tmp: Path) -> list[str]:
    dataset(tmp)
    np.savez(tmp / "new.npz", **arrays(seed=1))
    return ["write", "new.npz", "--out", "data"]


def write_onto_a_file(tmp: Path) -> list[str]:
    np.savez(tmp / "a.npz", **arrays())
    return ["write", "a.npz", "--out", "a.npz"]


def write_under_a_file(tmp: Path) -> list[str]:
    np.savez(tmp / "a.npz", **arrays())
    return ["write", "a.npz", "--out", "a.npz/out"]


def hdf5_rows_differ(tmp: Path) -> list[str]:
    with h5py.File(tmp / "d.h5", "w") as handle:
        handle["x"] = np.zeros((10, 3), np.float32)
        handle["label"] = np.zeros(8, np.int64)
    return ["write", "d.h5", "--out", "out"]


def hdf5_corrupt(tmp: Path) -> list[str]:
    with h5py.File(tmp / "d.h5", "w") as handle:
        handle["x"] = np.zeros((10, 3), np.float32)
    raw = bytearray((tmp / "d.h5").read_bytes())
    raw[:64] = bytes(64)  # the superblock
    (tmp / "d.h5").write_bytes(bytes(raw))
    return ["write", "d.h5", "--out", "out"]


def hdf5_truncated(tmp: Path) -> list[str]:
    with h5py.File(tmp / "d.h5", "w") as handle:
        handle.create_dataset("x", data=np.ones((2000, 16), np.float32), chunks=(100, 16))
        handle["label"] = np.arange(2000) % 3
    (tmp / "d.h5").write_bytes((tmp / "d.h5").read_bytes()[:60_000])
    return ["write", "d.h5", "--out", "out"]


def hdf5_without_datasets(tmp: Path) -> list[str]:
    with h5py.File(tmp / "d.h5", "w") as handle:
        handle.create_group("empty")
    return ["write", "d.h5", "--out", "out"]


def npz_empty_file(tmp: Path) -> list[str]:
    (tmp / "d.npz").write_bytes(b"")
    return ["write", "d.npz", "--out", "out"]


def npz_without_arrays(tmp: Path) -> list[str]:
    np.savez(tmp / "d.npz")
    return ["write", "d.npz", "--out", "out"]


def npz_truncated(tmp: Path) -> list[str]:
    np.savez(tmp / "full.npz", **arrays())
    (tmp / "d.npz").write_bytes((tmp / "full.npz").read_bytes()[:900])
    return ["write", "d.npz", "--out", "out"]


def npz_corrupt(tmp: Path) -> list[str]:
    np.savez_compressed(tmp / "d.npz", **arrays(4096))
    raw = bytearray((tmp / "d.npz").read_bytes())
    for offset in range(2000, 2400):
        raw[offset] ^= 0x5A  # inside the first member's deflated data
    (tmp / "d.npz").write_bytes(bytes(raw))
    return ["write", "d.npz", "--out", "out"]


def npz_garbage(tmp: Path) -> list[str]:
    (tmp / "d.npz").write_bytes(os.urandom(4000))
    return ["write", "d.npz", "--out", "out"]


def npz_object_dtype(tmp: Path) -> list[str]:
    np.savez(tmp / "d.npz", x=np.array([{"a": 1}] * 4, dtype=object), label=np.zeros(4, np.int64))
    return ["write", "d.npz", "--out", "out"]


def npz_lengths_differ(tmp: Path) -> list[str]:
    np.savez(tmp / "d.npz", x=np.zeros((5, 2), np.float32), label=np.zeros(6, np.int64))
    return ["write", "d.npz", "--out", "out"]


def npy_truncated(tmp: Path) -> list[str]:
    np.save(tmp / "full.npy", np.zeros((100, 8), np.float32))
    (tmp / "x.npy").write_bytes((tmp / "full.npy").read_bytes()[:500])
    return ["write", "x.npy", "--out", "out"]


def negative_labels(tmp: Path) -> list[str]:
    values = arrays()
    values["label"][17] = -1
    np.savez(tmp / "d.npz", **values)
    return ["write", "d.npz", "--out", "out"]


def force_with_a_corrupt_source(tmp: Path) -> list[str]:
    dataset(tmp)
    (tmp / "bad.npz").write_bytes(b"PK\x03\x04 not really")
    return ["write", "bad.npz", "--out", "data", "--force"]


def force_with_an_empty_source(tmp: Path) -> list[str]:
    dataset(tmp)
    np.savez(tmp / "empty.npz", **arrays(0))
    return ["write", "empty.npz", "--out", "data", "--force"]


def force_with_an_empty_eval_share(tmp: Path) -> list[str]:
    dataset(tmp)
    return ["write", "clean.npz", "--out", "data", "--force", "--eval_fraction", "1.5"]


def label_not_a_feature(tmp: Path) -> list[str]:
    np.savez(tmp / "d.npz", **arrays())
    return ["write", "d.npz", "--out", "out", "--label", "y"]


def features_not_held(tmp: Path) -> list[str]:
    np.savez(tmp / "d.npz", **arrays())
    return ["write", "d.npz", "--out", "out", "--features", "x,pixels"]


def bad_shard_size(tmp: Path) -> list[str]:
    np.savez(tmp / "d.npz", **arrays())
    return ["write", "d.npz", "--out", "out", "--shard_size", "lots"]


def missing_source(tmp: Path) -> list[str]:
    return ["write", "nothing.npz", "--out", "out"]


def inspect_missing_folder(tmp: Path) -> list[str]:
    return ["inspect", "nowhere"]


def inspect_folder_without_schema(tmp: Path) -> list[str]:
    (tmp / "plain").mkdir()
    (tmp / "plain" / "notes.txt").write_text("not data")
    return ["inspect", "plain"]


def inspect_malformed_schema(tmp: Path) -> list[str]:
    split = dataset(tmp)
    (split / "schema.json").write_text('{"split": "train", "features": ')
    return ["inspect", "data"]


def inspect_unknown_encoding(tmp: Path) -> list[str]:
    split = dataset(tmp)
    edit_schema(split, lambda body: body["features"]["x"].update(encoding="float_list"))
    return ["inspect", "data"]


def inspect_schema_lists_a_feature_the_records_lack(tmp: Path) -> list[str]:
    split = dataset(tmp)
    edit_schema(split, lambda body: body["features"].update(mask={"dtype": "uint8", "shape": [4], "encoding": "raw"}))
    return ["inspect", "data"]


def inspect_schema_without_shards(tmp: Path) -> list[str]:
    split = dataset(tmp)
    edit_schema(split, lambda body: body.update(shards=[], records=0))
    return ["inspect", "data"]


def inspect_corrupt_first_record(tmp: Path) -> list[str]:
    split = dataset(tmp)
    shard = sorted(split.glob("train-*.tfrecord"))[0]
    raw = bytearray(shard.read_bytes())
    raw[20] ^= 0xFF
    shard.write_bytes(bytes(raw))
    return ["inspect", "data"]


def verify_missing_folder(tmp: Path) -> list[str]:
    return ["verify", "nowhere"]


def verify_malformed_schema(tmp: Path) -> list[str]:
    split = dataset(tmp)
    edit_schema(split, lambda body: body.pop("shards"))
    return ["verify", "data"]


def verify_a_file(tmp: Path) -> list[str]:
    np.savez(tmp / "d.npz", **arrays())
    return ["verify", "d.npz"]


CASES = {
    maker.__name__: maker
    for maker in [
        write_into_existing,
        write_onto_a_file,
        write_under_a_file,
        hdf5_rows_differ,
        hdf5_corrupt,
        hdf5_truncated,
        hdf5_without_datasets,
        npz_empty_file,
        npz_without_arrays,
        npz_truncated,
        npz_corrupt,
        npz_garbage,
        npz_object_dtype,
        npz_lengths_differ,
        npy_truncated,
        negative_labels,
        force_with_a_corrupt_source,
        force_with_an_empty_source,
        force_with_an_empty_eval_share,
        label_not_a_feature,
        features_not_held,
        bad_shard_size,
        missing_source,
        inspect_missing_folder,
        inspect_folder_without_schema,
        inspect_malformed_schema,
        inspect_unknown_encoding,
        inspect_schema_lists_a_feature_the_records_lack,
        inspect_schema_without_shards,
        inspect_corrupt_first_record,
        verify_missing_folder,
        verify_malformed_schema,
        verify_a_file,
    ]
}

# What the one line must say, beyond "tfkit: error:".
EXPECTED = {
    "write_into_existing": "already holds files",
    "write_onto_a_file": "is a file; expected a folder",
    "write_under_a_file": "cannot create the parent",
    "hdf5_rows_differ": "different numbers of rows ({'label': 8, 'x': 10})",
    "hdf5_corrupt": "HDF5 file 'd.h5' cannot be read",
    "hdf5_truncated": "HDF5 file 'd.h5' cannot be read (Unable to synchronously open file (truncated file",
    "hdf5_without_datasets": "holds no datasets",
    "npz_empty_file": "'d.npz' cannot be read as an .npz archive",
    "npz_without_arrays": "holds no arrays",
    "npz_truncated": "'d.npz' cannot be read as an .npz archive",
    "npz_corrupt": "'d.npz' cannot be read as an .npz archive",
    "npz_garbage": "'d.npz' cannot be read as an .npz archive",
    "npz_object_dtype": "holds Python objects (object dtype)",
    "npz_lengths_differ": "different numbers of rows",
    "npy_truncated": "'x.npy' cannot be read as an .npy file",
    "negative_labels": "label 'label' is -1 in record 17",
    "force_with_a_corrupt_source": "'bad.npz' cannot be read as an .npz archive",
    "force_with_an_empty_source": "has no examples",
    "force_with_an_empty_eval_share": "--eval_fraction received 1.5",
    "label_not_a_feature": "--label received 'y'",
    "features_not_held": "--features names pixels",
    "bad_shard_size": "--shard_size",
    "missing_source": "source 'nothing.npz' does not exist",
    "inspect_missing_folder": "does not exist",
    "inspect_folder_without_schema": "holds no record files",
    "inspect_malformed_schema": "is malformed",
    "inspect_unknown_encoding": "has encoding 'float_list'",
    "inspect_schema_lists_a_feature_the_records_lack": "feature 'mask' holds 0 value(s)",
    "inspect_schema_without_shards": "holds no records",
    "inspect_corrupt_first_record": "corrupt data: train-00000-of-00010.tfrecord: record 0",
    "verify_missing_folder": "does not exist",
    "verify_malformed_schema": "is malformed",
    "verify_a_file": "is not a TFRecord file",
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_records_command_is_one_line_exit_2_and_changes_nothing(tmp_path, case):
    args = CASES[case](tmp_path)
    before = file_hashes(tmp_path)
    result = tfkit_process(["tfkit.records", *args], cwd=tmp_path)
    line = assert_refused(result, before=before, roots=[tmp_path])
    assert line.startswith("tfkit: error: ") and EXPECTED[case] in line, line
    assert not list(tmp_path.glob(".*"))  # no staged folder or temporary left beside the output


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` (root only); skips the test where mounting is not allowed."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"a full disk needs a tmpfs mount, which is not allowed here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_a_full_disk_is_one_line_and_the_old_split_stays_intact(tmp_path, compression):
    # Uncompressed, the size is known up front and the write is refused before it starts; gzip'd random floats do not
    # shrink, so that write runs into the full disk midway and must clean up after itself.
    np.savez(tmp_path / "big.npz", **arrays(80_000))  # 1.9 MB of values; more as records
    with small_disk(tmp_path / "disk", "1m") as disk:
        dataset(disk.parent, name="disk/data")
        before = file_hashes(disk)
        result = tfkit_process(
            ["tfkit.records", "write", "big.npz", "--out", "disk/data", "--force", "--compression", compression],
            cwd=tmp_path,
        )
        line = assert_refused(result, before=before, roots=[disk])
        assert ("disk of 'disk/data' is full" in line) if compression == "gzip" else ("has" in line and "free" in line)
        assert sorted(path.name for path in disk.iterdir()) == ["data"]


@pytest.mark.parametrize("out", ["disk/data", "disk/new"])
def test_a_read_only_disk_is_one_line_and_the_old_split_stays_intact(tmp_path, out):
    np.savez(tmp_path / "d.npz", **arrays())
    with small_disk(tmp_path / "disk", "1m") as disk:
        dataset(disk.parent, name="disk/data")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        before = file_hashes(disk)
        result = tfkit_process(["tfkit.records", "write", "d.npz", "--out", out, "--force"], cwd=tmp_path)
        line = assert_refused(result, before=before, roots=[disk])
        assert f"cannot write to '{out}' (Read-only file system)" in line, line


def test_force_replaces_a_split_and_leaves_nothing_beside_it(tmp_path):
    dataset(tmp_path)
    np.savez(tmp_path / "new.npz", **arrays(100, seed=1))
    result = tfkit_process(["tfkit.records", "write", "new.npz", "--out", "data", "--force"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert records.read_schema(tmp_path / "data").records == 100
    assert not list(tmp_path.glob(".*"))


# Training on bad data: refused at start, before the workdir exists.
def nan_rows(tmp: Path) -> list[str]:
    values = arrays(256)
    values["x"][::32, 2] = np.nan  # 8 of 256 rows: an mlp's ReLU would turn them into zeros and train on
    np.savez(tmp / "d.npz", **values)
    assert tfkit_process(["tfkit.records", "write", "d.npz", "--out", "data"], cwd=tmp).returncode == 0
    return []


def nan_rows_foreign(tmp: Path) -> list[str]:
    nan_rows(tmp)
    edit_schema(tmp / "data", lambda body: body["features"]["x"].pop("nonfinite"))
    return []


def labels_past_the_classes(tmp: Path) -> list[str]:
    dataset(tmp)
    edit_schema(tmp / "data", lambda body: body["features"]["label"].update(num_classes=2))
    return []


def negative_label_foreign(tmp: Path) -> list[str]:
    features = {"x": records.Feature("float32", (4,), "raw"), "label": records.Feature("int64", (), "int64")}
    rows = [{"x": np.zeros(4, np.float32), "label": np.int64(-1 if index == 9 else 1)} for index in range(128)]
    records.write_split(rows, tmp / "data", split="train", features=features, num_shards=4)
    return []


def schema_lists_a_missing_feature(tmp: Path) -> list[str]:
    dataset(tmp)
    edit_schema(
        tmp / "data", lambda body: body["features"].update(w={"dtype": "float32", "shape": [], "encoding": "raw"})
    )
    return []


def schema_dtype_differs(tmp: Path) -> list[str]:
    dataset(tmp)
    edit_schema(tmp / "data", lambda body: body["features"]["x"].update(dtype="float64"))
    return []


def schema_lists_a_missing_shard(tmp: Path) -> list[str]:
    dataset(tmp)
    sorted((tmp / "data").glob("train-*.tfrecord"))[-1].rename(tmp / "elsewhere.tfrecord")
    return []


TRAINING = {
    "nan_rows": (nan_rows, "feature 'x' of", "holds 8 NaN/inf value(s), the first in record"),
    "nan_rows_foreign": (nan_rows_foreign, "feature 'x' of", "holds 1 NaN/inf value(s), the first in '"),
    "labels_past_the_classes": (labels_past_the_classes, "'", "record 2: label 'label' is 2; expected [0, 2)"),
    "negative_label_foreign": (
        negative_label_foreign,
        "'",
        "train-00001-of-00004.tfrecord' record 2: label 'label' is -1",
    ),
    "schema_lists_a_missing_feature": (schema_lists_a_missing_feature, "'", "record 0 lacks feature 'w'"),
    "schema_dtype_differs": (schema_dtype_differs, "'", "feature 'x' holds 16 bytes; the schema says float64 [4], 32"),
    "schema_lists_a_missing_shard": (schema_lists_a_missing_shard, "shard '", "does not exist; expected every"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", TRAINING)
def test_training_on_bad_data_is_refused_at_start_with_one_line(tmp_path, case):
    make, start, middle = TRAINING[case]
    make(tmp_path)
    before = file_hashes(tmp_path)
    settings = ["model.name=mlp", "data.train=data", "data.eval=null", "data.features=x", "train.epochs=1"]
    command = ["tfkit.train", "--workdir", "run"] + [part for setting in settings for part in ("--set", setting)]
    result = tfkit_process(command, cwd=tmp_path)
    line = assert_refused(result, before=before, roots=[tmp_path])
    assert line.startswith(f"tfkit: error: {start}") and middle in line, line
    assert not (tmp_path / "run").exists()
