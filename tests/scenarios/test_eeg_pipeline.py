"""Converting an HDF5 file of EEG windows and training on it end to end."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from conftest import tfkit_process


@pytest.mark.slow
def test_convert_an_hdf5_file_of_eeg_windows_and_train_on_it(outside_repo):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 640)
    x = rng.standard_normal((640, 129, 200)).astype(np.float32)
    x[:, 0, :] += (2 * y[:, None] - 1) * 0.5  # a signal in channel 0
    with h5py.File(outside_repo / "eeg.h5", "w") as handle:
        handle["x"] = x
        handle["y"] = y
    write = ["tfkit.records", "write", "eeg.h5", "--out", "data", "--eval_fraction", "0.2", "--shuffle_seed", "0"]
    written = tfkit_process(write, cwd=outside_repo)
    assert written.returncode == 0, written.stderr
    assert "wrote 128 records in 10 shard(s)" in written.stdout and "wrote 512 records" in written.stdout
    sets = ["data.train=data/train", "data.eval=data/eval", "data.features=x", "data.label=y", "model=mlp"]
    sets += ["train.global_batch_size=32", "train.epochs=4", "name=eeg"]
    args = [item for value in sets for item in ("--set", value)]
    trained = tfkit_process(["tfkit.train", *args], cwd=outside_repo)
    assert trained.returncode == 0, trained.stderr
    summary = json.loads((outside_repo / "runs" / "eeg" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 4 * (512 // 32)
    assert summary["metrics"]["accuracy"] > 0.9
