"""Checkpoints: verified on read (sha256 manifests), a damaged newest one falls back, a full disk stops cleanly."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest
import tensorflow as tf
from conftest import DIGITS_CONFIG, file_hashes, stderr_lines, tfkit_process

import tfkit.train
from tfkit import atomic, checkpoint, checksums, disk, export
from tfkit.errors import UserError


@contextlib.contextmanager
def tmpfs(folder: Path, size: str):
    """A tmpfs of ``size`` mounted at ``folder`` (root only); the test is skipped where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); a full disk needs one")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, *, leave: int) -> None:
    """Fills the filesystem of ``folder`` until ``leave`` bytes are free."""
    free = disk.free_bytes(folder)
    try:
        (folder / "filler").write_bytes(b"\0" * max(0, free - leave))
    except OSError as error:  # the trainer wrote a checkpoint in between: the disk is full all the same
        if error.errno != errno.ENOSPC:
            raise


def flip_bytes(path: Path) -> None:
    content = bytearray(path.read_bytes())
    middle = len(content) // 2
    content[middle : middle + 8] = bytes(byte ^ 0xFF for byte in content[middle : middle + 8])
    path.write_bytes(bytes(content))


def small_state(directory: Path) -> checkpoint.RunState:
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(512), keras.layers.Dense(10)])
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    return checkpoint.RunState(
        model=model,
        optimizer=optimizer,
        metrics=[],
        directory=directory,
        keep=3,
        identity={"model": "small"},
        batch=(8, 1),
        learning_rate_scale=tf.Variable(1.0),
    )


def test_each_checkpoint_has_a_manifest_that_finds_a_flipped_byte(tmp_path):
    state = small_state(tmp_path / "checkpoints")
    for step in (1, 2, 3, 4):
        state.save(step=step, elapsed=float(step))
    manifests = sorted(path.name for path in (tmp_path / "checkpoints").glob("*.sha256"))
    assert manifests == ["ckpt-2.sha256", "ckpt-3.sha256", "ckpt-4.sha256"]  # the deleted one's went with it
    newest = tmp_path / "checkpoints" / "ckpt-4"
    assert checksums.problem(newest) is None
    (data_file,) = newest.parent.glob("ckpt-4.data-*")
    flip_bytes(data_file)
    assert checksums.problem(newest) == f"{data_file.name} does not match the sha256 written with it"


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before_saying_so(tmp_path):
    state = small_state(tmp_path / "checkpoints")
    state.save(step=1, elapsed=1.0)
    state.save(step=2, elapsed=2.0)
    (data_file,) = (tmp_path / "checkpoints").glob("ckpt-2.data-*")
    flip_bytes(data_file)
    said: list[str] = []
    fresh = small_state(tmp_path / "checkpoints")
    assert fresh.restore(say=said.append)
    assert int(fresh.step.numpy()) == 1
    assert len(said) == 1 and "ckpt-2 is damaged" in said[0] and "falling back" in said[0]
    (data_file,) = (tmp_path / "checkpoints").glob("ckpt-1.data-*")
    flip_bytes(data_file)
    with pytest.raises(UserError, match=r"every checkpoint in .* is damaged"):
        small_state(tmp_path / "checkpoints").check_resumable()


def test_a_disk_that_fills_during_a_save_raises_disk_full_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    with tmpfs(tmp_path / "disk", "4m") as folder:
        state = small_state(folder / "checkpoints")
        state.save(step=1, elapsed=1.0)
        fill(folder, leave=64 * 1024)
        # The check before the save would stop it; make it believe there is room, so the write itself fails.
        monkeypatch.setattr(disk, "free_bytes", lambda path: 1 << 40)
        started = time.monotonic()
        with pytest.raises(checkpoint.DiskFull, match="filled up while checkpoint 2 was written"):
            state.save(step=2, elapsed=2.0)
        assert time.monotonic() - started < 30
        assert tf.train.latest_checkpoint(str(folder / "checkpoints")).endswith("ckpt-1")
        assert not list((folder / "checkpoints").glob("ckpt-2*"))
        assert checksums.problem(folder / "checkpoints" / "ckpt-1") is None
        monkeypatch.undo()
        with pytest.raises(checkpoint.DiskFull, match="the next checkpoint needs about"):
            state.save(step=2, elapsed=2.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("checkpoint") / "run"
    tfkit.train.run(DIGITS_CONFIG, workdir=workdir, overrides=["train.epochs=2"])
    return workdir


def test_resume_falls_back_from_a_damaged_checkpoint_and_export_refuses_it(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    newest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    for data_file in run.glob(f"checkpoints/**/{Path(newest).name}.data-*"):
        flip_bytes(data_file)
    with pytest.raises(UserError, match=rf"checkpoint '.*{Path(newest).name}' is damaged: .* --checkpoint best"):
        export.restore_model(run, which="last")
    summary = tfkit.train.run(run / "config.yaml", workdir=run, overrides=["train.epochs=3"])
    assert summary["status"] == "completed"
    assert summary["steps"] == 3 * json.loads((trained / "summary.json").read_text())["steps"] // 2
    assert f"{Path(newest).name} is damaged" in capsys.readouterr().out


@pytest.mark.slow
def test_a_resume_on_a_full_disk_stops_with_75_at_once_and_changes_nothing(trained, tmp_path):
    with tmpfs(tmp_path / "disk", "8m") as folder:
        shutil.copytree(trained, folder / "run")
        fill(folder, leave=32 * 1024)
        before = file_hashes(folder)
        started = time.monotonic()
        result = tfkit_process(
            ["tfkit.train", "--workdir", "disk/run", "--config", "disk/run/config.yaml", "--set", "train.epochs=3"],
            cwd=tmp_path,
        )
        assert result.returncode == 75, result.stderr[-2000:]
        assert time.monotonic() - started < 120  # TensorFlow's start-up; the refusal itself is immediate
        lines = stderr_lines(result)
        assert len(lines) == 1 and "bytes free" in lines[0] and "nothing was written" in lines[0], result.stderr
        assert file_hashes(folder) == before


@pytest.mark.slow
def test_a_disk_that_fills_during_training_stops_within_seconds_with_75(tmp_path):
    with tmpfs(tmp_path / "disk", "16m") as folder:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tfkit.train",
                "--workdir",
                str(folder / "run"),
                "--set",
                "train.epochs=200",
                "--set",
                "checkpoint.every_steps=4",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("epoch 2"):
                break
        fill(folder, leave=16 * 1024)
        filled = time.monotonic()
        try:
            stdout, stderr = process.communicate(timeout=120)
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
        assert time.monotonic() - filled < 90  # the next checkpoint is at most 4 steps away
        assert process.returncode == 75, stderr[-2000:]
        assert "Traceback" not in stderr
        assert "disk" in stderr_lines(subprocess.CompletedProcess([], 75, stdout, stderr))[-1]
        latest = tf.train.latest_checkpoint(str(folder / "run" / "checkpoints"))
        assert latest is not None and checksums.problem(latest) is None
        (folder / "filler").unlink()
        model, restored = export.restore_model(folder / "run", which="last")
        assert restored == latest and math.isfinite(float(model.variables[0].numpy().sum()))


def test_atomic_replacing_keeps_the_old_output_until_the_new_one_is_complete(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old").write_text("old\n")
    with pytest.raises(RuntimeError), atomic.replacing(target) as temporary:
        temporary.mkdir()
        (temporary / "half").write_text("half\n")
        raise RuntimeError("the export failed")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]
    assert (target / "old").read_text() == "old\n"
    with atomic.replacing(target) as temporary:
        temporary.mkdir()
        (temporary / "new").write_text("new\n")
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["model", "new"]
