"""Every source type converts and reads back unchanged: numpy, HDF5, image folders, tensorflow-datasets, iterators."""

from __future__ import annotations

import json
import signal
import struct
import time

import h5py
import numpy as np
import pytest
import tensorflow as tf
from conftest import python_script, stderr_lines, tfkit_process

from tfkit import data, errors, records
from tfkit.data.decode import decode_example
from tfkit.records import sources


def read_split(folder, features: list[str] | None = None) -> dict[str, list]:
    """Every record of a split, decoded by its schema alone, in file order."""
    schema = records.read_schema(folder)
    names = features or list(schema.features)
    values: dict[str, list] = {name: [] for name in names}
    specs = {name: data.parse_spec(schema.features[name]) for name in names}
    for path in schema.files(folder):
        for serialized in tf.data.TFRecordDataset(path, compression_type=schema.compression or ""):
            parsed = tf.io.parse_single_example(serialized, specs)
            for name in names:
                values[name].append(decode_example(parsed[name], schema.features[name], image_size=()).numpy())
    return values


def eeg_file(path, count=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((count, 129, 200)).astype(np.float32)
    y = rng.integers(0, 4, count)
    with h5py.File(path, "w") as handle:
        handle.create_dataset("eeg/x", data=x, chunks=(8, 129, 200))
        handle.create_dataset("eeg/y", data=y)
    return x, y


def test_hdf5_eeg_windows_round_trip_byte_identical_in_chunked_shards(tmp_path):
    x, y = eeg_file(tmp_path / "eeg.h5")
    source = sources.open_source([str(tmp_path / "eeg.h5")], label="eeg/y")
    assert source.features["eeg/x"] == records.Feature("float32", (129, 200), "raw")
    assert source.features["eeg/y"] == records.Feature("int64", (), "int64", num_classes=4)
    schema = records.write(source, tmp_path / "out", shard_bytes=1_000_000)
    assert len(schema.shards) == 10 and schema.records == 96  # 10 MB of windows in ~1 MB shards
    assert [shard.file for shard in schema.shards][-1] == "train-00009-of-00010.tfrecord"
    back = read_split(tmp_path / "out")
    assert np.stack(back["eeg/x"]).tobytes() == x.tobytes()  # in order: no shuffle asked for
    assert np.array_equal(back["eeg/y"], y)


def test_npy_files_and_npz_round_trip_and_a_seeded_shuffle_is_deterministic(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, (50, 6, 5, 3), dtype=np.uint8)
    labels = np.arange(50) % 7
    np.save(tmp_path / "image.npy", images)
    np.save(tmp_path / "label.npy", labels)
    np.savez(tmp_path / "both.npz", image=images, label=labels)
    npy = sources.open_source([str(tmp_path / "image.npy"), str(tmp_path / "label.npy")])
    npz = sources.open_source([str(tmp_path / "both.npz")])
    assert npy.features == npz.features and npy.features["label"].num_classes == 7
    first = records.write(npy, tmp_path / "a", shuffle_seed=3)
    again = records.write(npz, tmp_path / "b", shuffle_seed=3)
    records.write(npz, tmp_path / "c", shuffle_seed=4)
    files = [(tmp_path / name / "train-00000-of-00010.tfrecord").read_bytes() for name in "abc"]
    assert files[0] == files[1] != files[2]  # the same data and seed give the same bytes
    back = read_split(tmp_path / "a")
    order = [int(np.flatnonzero((images == image).all(axis=(1, 2, 3)))[0]) for image in back["image"]]
    assert sorted(order) == list(range(50)) and order != list(range(50))
    assert [int(label) for label in back["label"]] == [int(labels[index]) for index in order]
    assert first.records == again.records == 50


def test_a_parallel_write_gives_the_same_bytes_as_one_process(tmp_path):
    eeg_file(tmp_path / "eeg.h5", count=40)
    source = sources.open_source([str(tmp_path / "eeg.h5")])
    records.write(source, tmp_path / "one", shuffle_seed=0, workers=1, compression="gzip")
    records.write(source, tmp_path / "two", shuffle_seed=0, workers=2, compression="gzip")
    for shard in (tmp_path / "one").glob("*.tfrecord"):
        assert shard.read_bytes() == (tmp_path / "two" / shard.name).read_bytes()
    assert json.loads((tmp_path / "two" / "schema.json").read_text())["compression"] == "GZIP"
    assert len(read_split(tmp_path / "two")["eeg/x"]) == 40


def test_an_image_folder_keeps_jpeg_and_png_encoded_and_decodes_equal(tmp_path):
    rng = np.random.default_rng(2)
    for kind, encode in (("jpeg", tf.io.encode_jpeg), ("png", tf.io.encode_png)):
        root = tmp_path / kind
        for name in ("cat", "dog"):
            (root / name).mkdir(parents=True)
            for index in range(3):
                pixels = rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)
                (root / name / f"{index}.{'jpg' if kind == 'jpeg' else 'png'}").write_bytes(encode(pixels).numpy())
        source = sources.open_source([str(root)])
        assert source.features["image"] == records.Feature("uint8", (12, 10, 3), kind)
        assert source.features["label"].classes == ("cat", "dog")
        records.write(source, tmp_path / f"out-{kind}")
        back = read_split(tmp_path / f"out-{kind}")
        files = sorted(root.rglob("*.*"))
        expected = [tf.io.decode_image(path.read_bytes(), channels=3).numpy() for path in files]
        assert all(np.array_equal(a, b) for a, b in zip(back["image"], expected, strict=True))
        assert [int(label) for label in back["label"]] == [0, 0, 0, 1, 1, 1]
        shard = sorted((tmp_path / f"out-{kind}").glob("*.tfrecord"))[0]
        stored = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(str(shard)))).numpy())
        assert stored.features.feature["image"].bytes_list.value[0] == files[0].read_bytes()  # kept encoded


def with_icc_profile(jpeg: bytes, size: int) -> bytes:
    """The JPEG with a ``size``-byte ICC profile, in APP2 segments, before its frame header (as cameras write it)."""
    chunk = 65_000
    pieces = [jpeg[:2]]  # SOI
    parts = [b"\x00" * min(chunk, size - start) for start in range(0, size, chunk)]
    for index, part in enumerate(parts):
        body = b"ICC_PROFILE\x00" + bytes([index + 1, len(parts)]) + part
        pieces.append(b"\xff\xe2" + struct.pack(">H", len(body) + 2) + body)
    return b"".join([*pieces, jpeg[2:]])


def test_a_jpeg_whose_header_passes_64_kb_is_written_and_decodes_equal(tmp_path):
    """A photo's EXIF and ICC segments can pass 64 KB before the frame header that holds its size."""
    rng = np.random.default_rng(5)
    root = tmp_path / "photos"
    for name, profile in (("plain", 0), ("camera", 200_000)):
        (root / name).mkdir(parents=True)
        jpeg = tf.io.encode_jpeg(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).numpy()
        (root / name / "0.jpg").write_bytes(with_icc_profile(jpeg, profile) if profile else jpeg)
    assert (root / "camera" / "0.jpg").stat().st_size > 200_000
    source = sources.open_source([str(root)])
    assert source.features["image"] == records.Feature("uint8", (12, 10, 3), "jpeg")
    records.write(source, tmp_path / "out")
    back = read_split(tmp_path / "out")
    files = sorted(root.rglob("*.jpg"))
    expected = [tf.io.decode_image(path.read_bytes(), channels=3).numpy() for path in files]
    assert all(np.array_equal(a, b) for a, b in zip(back["image"], expected, strict=True))


def test_a_prepared_tensorflow_datasets_folder_converts(tmp_path):
    script = f"""
import numpy as np, tensorflow_datasets as tfds
class Tiny(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")
    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({{
            "image": tfds.features.Tensor(shape=(4, 3), dtype=np.float32),
            "label": tfds.features.ClassLabel(num_classes=3)}}))
    def _split_generators(self, dl_manager):
        return {{"train": self._generate_examples(10), "test": self._generate_examples(4)}}
    def _generate_examples(self, n):
        for i in range(n):
            yield i, {{"image": np.full((4, 3), i, np.float32), "label": i % 3}}
builder = Tiny(data_dir={str(tmp_path / "tfds")!r})
builder.download_and_prepare()
print(builder.data_dir)
"""
    made = python_script(script, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    folder = made.stdout.strip().splitlines()[-1]
    result = tfkit_process(["tfkit.records", "write", folder, "--out", str(tmp_path / "out")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote 10 records in 10 shard(s)" in result.stdout
    schema = records.read_schema(tmp_path / "out")
    assert schema.features["label"] == records.Feature("int64", (), "int64", num_classes=3)
    back = read_split(tmp_path / "out")
    pairs = sorted((int(image[0, 0]), int(label)) for image, label in zip(back["image"], back["label"], strict=True))
    assert pairs == [(index, index % 3) for index in range(10)]
    assert all(np.array_equal(image, np.full((4, 3), image[0, 0], np.float32)) for image in back["image"])


@pytest.mark.slow
def test_a_tensorflow_datasets_folder_of_images_of_varying_size_keeps_them_encoded(tmp_path):
    script = f"""
import numpy as np, tensorflow_datasets as tfds
class Flowers(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")
    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({{
            "image": tfds.features.Image(encoding_format="jpeg"),
            "label": tfds.features.ClassLabel(num_classes=2)}}))
    def _split_generators(self, dl_manager):
        return {{"train": self._generate_examples(6)}}
    def _generate_examples(self, n):
        for i in range(n):
            yield i, {{"image": np.full((20 + i, 30 - i, 3), 40 * i, np.uint8), "label": i % 2}}
builder = Flowers(data_dir={str(tmp_path / "tfds")!r})
builder.download_and_prepare()
print(builder.data_dir)
"""
    made = python_script(script, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    folder = made.stdout.strip().splitlines()[-1]
    result = tfkit_process(["tfkit.records", "write", folder, "--out", str(tmp_path / "out")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    schema = records.read_schema(tmp_path / "out")
    assert schema.features["image"] == records.Feature("uint8", (-1, -1, 3), "jpeg")
    shapes = []
    for path in schema.files(tmp_path / "out"):
        for serialized in records.read_records(path):
            data = records.parse(serialized)["image"][0]
            assert isinstance(data, bytes) and data.startswith(b"\xff\xd8\xff")  # JPEG bytes, never pixels
            shapes.append(tuple(tf.io.decode_jpeg(data).shape))
    assert sorted(shapes) == sorted((20 + index, 30 - index, 3) for index in range(6))


def test_bad_sources_get_one_line_each(tmp_path):
    np.save(tmp_path / "empty.npy", np.zeros((0, 3), np.float32))
    (tmp_path / "notes.txt").write_text("hello")
    cases = [
        ([str(tmp_path / "missing.h5")], "source '", "does not exist; expected a file or folder to convert"),
        ([str(tmp_path / "empty.npy")], "the source", "has no examples for split 'train'; expected at least one"),
        ([str(tmp_path / "notes.txt")], "source '", "is not a kind tfkit.records can read"),
    ]
    for args, start, middle in cases:
        result = tfkit_process(["tfkit.records", "write", *args, "--out", str(tmp_path / "out")], cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        (line,) = stderr_lines(result)
        assert line.startswith(f"tfkit: error: {start}") and middle in line, line
    unknown = tfkit_process(["tfkit.records", "write", "--out", "x"], cwd=tmp_path)
    assert unknown.returncode == 2 and len(stderr_lines(unknown)) == 1
    assert not (tmp_path / "out" / "schema.json").exists()


@pytest.mark.slow
def test_a_write_killed_midway_leaves_no_shard_that_looks_complete(tmp_path):
    eeg_file(tmp_path / "eeg.h5", count=3000)  # 310 MB: three 128 MB shards, one after another
    command = ["tfkit.records", "write", str(tmp_path / "eeg.h5"), "--out", "out", "--workers", "1"]
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", *command], cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.tmp-*/.train-*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # while the first shard is being written
    process.wait()
    out = tmp_path / "out"
    assert list(tmp_path.glob(".out.tmp-*/.train-*.tmp"))  # it was killed while writing, into a staged folder
    assert not out.exists()  # nothing that looks like a split
    again = tfkit_process(command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["eeg.h5", "out"]  # the killed write's folder went
    verified = tfkit_process(["tfkit.records", "verify", "out"], cwd=tmp_path)
    assert verified.returncode == 0 and "3000 good records of 3000" in verified.stdout


def test_hdf5_scalar_datasets_are_left_out_and_datasets_of_other_lengths_are_refused(tmp_path):
    with h5py.File(tmp_path / "d.h5", "w") as handle:
        handle["x"] = np.zeros((6, 2), np.float32)
        handle["y"] = np.arange(6) % 2
        handle["sampling_rate"] = 250.0  # a scalar: the file's metadata, not a feature
    assert list(sources.HDF5Source(str(tmp_path / "d.h5")).features) == ["x", "y"]
    with h5py.File(tmp_path / "d.h5", "a") as handle:
        handle["channels"] = np.arange(3)  # one row per channel, not per example
    with pytest.raises(errors.UserError, match=r"different numbers of rows .*'channels': 3.*--features"):
        sources.HDF5Source(str(tmp_path / "d.h5"))
    assert len(sources.HDF5Source(str(tmp_path / "d.h5"), names=["x", "y"])) == 6


def test_negative_labels_are_refused_naming_the_first_record(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((5, 2), np.float32))
    np.save(tmp_path / "label.npy", np.array([0, 1, -3, 2, -1]))
    with pytest.raises(errors.UserError, match=r"label 'label' is -3 in record 2 \(2 record\(s\)"):
        sources.open_source([str(tmp_path / "x.npy"), str(tmp_path / "label.npy")])
