"""The best checkpoint and reduce-on-plateau follow the monitored value in the direction the metric registry gives.

Before the registry, only names ending in "accuracy" were maximised: a run monitoring ``val_iou`` kept its worst
epoch in ``checkpoints/best`` and lowered the learning rate whenever IoU improved.
"""

from __future__ import annotations

import csv

import pytest
import tensorflow as tf
from conftest import DIGITS_CONFIG, REPO

import tfkit.train

SEGMENTATION = REPO / "configs" / "shapes_segmentation.yaml"
EPOCHS = 3


def history(workdir):
    with (workdir / "history.csv").open() as handle:
        return list(csv.DictReader(handle))


def best_step(workdir):
    best = tf.train.latest_checkpoint(str(workdir / "checkpoints" / "best"))
    assert best is not None
    value = tf.train.load_checkpoint(best).get_tensor("best/.ATTRIBUTES/VARIABLE_VALUE")
    return int(best.rsplit("-", 1)[1]), float(value)


@pytest.mark.slow
def test_val_iou_keeps_its_highest_epoch_and_the_plateau_lowers_the_rate_only_without_improvement(tmp_path, capsys):
    run = tmp_path / "run"
    overrides = [
        f"train.epochs={EPOCHS}",
        "checkpoint.monitor=val_iou",
        "optimizer.schedule=plateau",
        "optimizer.plateau_patience=1",
        "optimizer.warmup_steps=0",
    ]
    summary = tfkit.train.run(SEGMENTATION, workdir=run, overrides=overrides)
    rows = history(run)
    assert len(rows) == EPOCHS
    highest = max(rows, key=lambda row: float(row["val_iou"]))
    assert best_step(run) == (int(highest["step"]), pytest.approx(float(highest["val_iou"])))
    assert summary["best"] == {
        "monitor": "val_iou",
        "mode": "max",
        "step": int(highest["step"]),
        "value": pytest.approx(float(highest["val_iou"])),
        "checkpoint": f"best/ckpt-{highest['step']}",
    }
    # With a patience of 1, the rate is lowered after exactly the epochs that did not beat the best so far.
    values = [float(row["val_iou"]) for row in rows]
    not_improved = sum(value <= max(values[:index]) for index, value in enumerate(values) if index)
    lowered = capsys.readouterr().out.count("tfkit: val_iou has not improved for 1 epoch(s)")
    assert lowered == not_improved


@pytest.mark.slow
def test_val_loss_keeps_its_lowest_epoch(tmp_path):
    run = tmp_path / "run"
    overrides = [f"train.epochs={EPOCHS}", "checkpoint.monitor=val_loss"]
    summary = tfkit.train.run(SEGMENTATION, workdir=run, overrides=overrides)
    lowest = min(history(run), key=lambda row: float(row["val_loss"]))
    assert best_step(run) == (int(lowest["step"]), pytest.approx(float(lowest["val_loss"])))
    assert (summary["best"]["monitor"], summary["best"]["mode"]) == ("val_loss", "min")
    assert summary["best"]["step"] == int(lowest["step"])


@pytest.mark.slow
def test_the_best_checkpoint_is_the_regular_checkpoints_own_files_not_a_second_write(tmp_path):
    run = tmp_path / "run"
    # Every epoch improves on an untrained start, so each epoch's checkpoint becomes the best in turn.
    tfkit.train.run(SEGMENTATION, workdir=run, overrides=["train.epochs=2", "checkpoint.monitor=loss"])
    best = tf.train.latest_checkpoint(str(run / "checkpoints" / "best"))
    name = best.rsplit("/", 1)[1]
    best_files = sorted((run / "checkpoints" / "best").glob(f"{name}.*"))
    assert best_files and len(list((run / "checkpoints" / "best").glob("ckpt-*"))) == len(best_files)
    for path in best_files:
        regular = run / "checkpoints" / path.name
        assert regular.exists() and regular.stat().st_ino == path.stat().st_ino  # one write, two names


@pytest.mark.slow
def test_a_kill_between_the_save_and_the_best_link_is_mended_on_resume(tmp_path):
    run = tmp_path / "run"
    tfkit.train.run(SEGMENTATION, workdir=run, overrides=["train.epochs=1", "checkpoint.monitor=loss"])
    best_folder = run / "checkpoints" / "best"
    name = tf.train.latest_checkpoint(str(best_folder)).rsplit("/", 1)[1]
    for path in best_folder.iterdir():  # as if killed after the regular save, before the best was kept
        path.unlink()
    summary = tfkit.train.run(SEGMENTATION, workdir=run, overrides=["train.epochs=1", "checkpoint.monitor=loss"])
    assert summary["status"] == "completed"
    assert tf.train.latest_checkpoint(str(best_folder)).rsplit("/", 1)[1] == name


@pytest.mark.slow
def test_val_auc_keeps_its_highest_epoch(tmp_path):
    run = tmp_path / "run"
    overrides = [f"train.epochs={EPOCHS}", "task.metrics=[accuracy, auc]", "checkpoint.monitor=val_auc"]
    summary = tfkit.train.run(DIGITS_CONFIG, workdir=run, overrides=overrides)
    assert summary["best"]["mode"] == "max"  # from the registry, without checkpoint.monitor_mode
    highest = max(history(run), key=lambda row: float(row["val_auc"]))
    assert best_step(run) == (int(highest["step"]), pytest.approx(float(highest["val_auc"])))
