"""Corrupt and truncated shards in training: a stop naming the shard, or data.skip_corrupt counting them exactly."""

from __future__ import annotations

import shutil
import struct

import pytest
from conftest import DIGITS_CONFIG, DIGITS_DATA, stderr_lines, tfkit_process

import tfkit.train


@pytest.fixture
def damaged(tmp_path):
    """The digits, with a flipped byte in record 17 of train shard 3 and train shard 5 cut inside record 100."""
    folder = tmp_path / "digits"
    shutil.copytree(DIGITS_DATA, folder)
    shard3 = folder / "train" / "train-00003-of-00008.tfrecord"
    raw = bytearray(shard3.read_bytes())
    (length,) = struct.unpack("<Q", raw[:8])
    size = 12 + length + 4
    raw[17 * size + 12 + length // 2] ^= 0xFF
    shard3.write_bytes(bytes(raw))
    shard5 = folder / "train" / "train-00005-of-00008.tfrecord"
    shard5.write_bytes(shard5.read_bytes()[: 100 * size + 20])
    return folder


def test_training_on_corrupt_data_stops_with_one_line_naming_the_shard(damaged, outside_repo):
    args = ["--set", f"data.train={damaged / 'train'}", "--set", f"data.eval={damaged / 'eval'}"]
    result = tfkit_process(["tfkit.train", "--workdir", "run", "--set", "train.epochs=2", *args], cwd=outside_repo)
    assert result.returncode == 2, result.stderr
    (line,) = stderr_lines(result)
    assert line.startswith(f"tfkit: error: corrupt data in '{damaged / 'train'}': train-00003-of-00008.tfrecord: ")
    assert "record 17" in line and "data.skip_corrupt: true" in line and "tfkit.records verify" in line
    assert (outside_repo / "run" / "checkpoints" / "checkpoint").exists()  # the state before it is kept


def test_skip_corrupt_skips_counts_and_reports_exactly_the_bad_records(damaged, tmp_path, capsys):
    overrides = [
        f"data.train={damaged / 'train'}",
        f"data.eval={damaged / 'eval'}",
        "data.skip_corrupt=true",
        "train.epochs=2",
    ]
    summary = tfkit.train.run(DIGITS_CONFIG, workdir=tmp_path / "run", overrides=overrides)
    out = capsys.readouterr().out
    assert summary["status"] == "completed"
    skipped = summary["skipped_records"]
    shard5_records = 179  # as the schema says
    assert skipped["train"]["records"] == 1 + (shard5_records - 100)  # the flipped one, and all after the cut
    assert skipped["eval"] == {"records": 0, "problems": []}
    assert len(skipped["train"]["problems"]) == 2
    assert "tfkit: data.skip_corrupt: skipping 80 corrupt record(s) in train:" in out
    assert summary["steps"] == 2 * ((1437 - 80) // 64)  # the epoch is as long as the good records allow
