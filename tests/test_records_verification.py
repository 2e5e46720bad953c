"""Verifying a split: every corrupt, truncated or missing shard named, and the counts the schema promises."""

from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pytest
from conftest import DIGITS_DATA, tfkit_process

from tfkit import records


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


def test_verify_names_each_corrupt_or_truncated_record_and_exits_1(damaged, tmp_path):
    result = tfkit_process(["tfkit.records", "verify", str(damaged / "train")], cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("corrupt: train-00003-of-00008.tfrecord: record 17 (byte ")
    assert "the data's CRC does not match" in lines[0]
    assert lines[1].startswith("corrupt: train-00005-of-00008.tfrecord: record 100 (byte ")
    assert "truncated" in lines[1]
    assert lines[2].endswith("2 problem(s)") and len(lines) == 3
    clean = tfkit_process(["tfkit.records", "verify", str(damaged / "eval")], cwd=tmp_path)
    assert clean.returncode == 0 and clean.stdout.strip().endswith("; clean")


def test_a_missing_shard_and_a_short_count_are_problems_too(tmp_path):
    folder = tmp_path / "digits"
    shutil.copytree(DIGITS_DATA / "train", folder)
    (folder / "train-00007-of-00008.tfrecord").unlink()
    body = json.loads((folder / "schema.json").read_text())
    body["shards"][0]["records"] += 1
    (folder / "schema.json").write_text(json.dumps(body))
    schema, problems, counts = records.verify(folder)
    assert [problem.describe() for problem in problems] == [
        f"train-00000-of-00008.tfrecord: record {counts[0]} (byte 0): holds {counts[0]} records; the schema says "
        f"{counts[0] + 1}",
        "train-00007-of-00008.tfrecord: record 0 (byte 0): missing: the schema lists it, the folder does not have it",
    ]
    assert counts[-1] == 0 and sum(counts) == schema.records - schema.shards[-1].records


def test_verify_names_every_record_holding_nan_or_inf_and_stays_0_for_clean_framing(tmp_path):
    x = np.zeros((30, 3), np.float32)
    x[4, 0], x[21, 2], x[22] = np.nan, np.inf, -np.inf
    np.savez(tmp_path / "d.npz", x=x, label=np.arange(30) % 2)
    assert tfkit_process(["tfkit.records", "write", "d.npz", "--out", "data"], cwd=tmp_path).returncode == 0
    result = tfkit_process(["tfkit.records", "verify", "data"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr  # the framing is intact; training refuses the values itself
    named = [line for line in result.stdout.splitlines() if line.startswith("nonfinite: ")]
    assert [line.split(" (record ")[1].split(" of")[0] for line in named] == ["4", "21", "22"]
    assert named[2].endswith("feature 'x' holds 3 NaN/inf")
    assert "30 good records of 30 in 10 shard(s); clean; 3 record(s) with NaN/inf values" in result.stdout
