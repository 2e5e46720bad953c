from __future__ import annotations

from pathlib import Path

import pytest

from tfkit import config as config_lib
from tfkit.errors import UserError

MINIMAL = "data: {train: /data/train}\ntrain: {per_replica_batch_size: 8}\n"
WITH_EVAL = "data: {train: /data/train, eval: /data/eval}\ntrain: {per_replica_batch_size: 8}\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        (
            MINIMAL,
            ["train.global_batch_size=64"],
            "config keys 'train.per_replica_batch_size' and 'train.global_batch_size' are both set (received 8 and "
            "64); expected exactly one",
        ),
        (MINIMAL, ["train.epochs=0"], "config key 'train.epochs': received 0; expected an integer of at least 1."),
        (MINIMAL, ["task.metrics=[accuracy, f1]"], "config key 'task.metrics': received 'f1'; expected some of"),
        ("data: {train: x}\n", [], "neither 'train.per_replica_batch_size' nor 'train.global_batch_size' is set"),
        (
            MINIMAL,
            ["distribute.cpu_replicas=2", "distribute.strategy=tpu"],
            "config keys 'distribute.cpu_replicas' (2) and 'distribute.strategy' ('tpu') contradict",
        ),
        (MINIMAL, ["train.clip_norm=0"], "config key 'train.clip_norm': received 0.0; expected a number above 0"),
        (MINIMAL, ["train.nan_lr_factor=2"], "config keys 'train.nan_retries' (3) and 'train.nan_lr_factor' (2.0)"),
        (
            MINIMAL,
            ["optimizer.base_batch_size=0"],
            "config key 'optimizer.base_batch_size': received 0; expected an integer of at least 1.",
        ),
        (
            MINIMAL,
            ["optimizer.warmup_steps=-1"],
            "config key 'optimizer.warmup_steps': received -1; expected an integer of at least 0.",
        ),
        (MINIMAL, ["optimizer.base_learning_rate=-1"], "'optimizer.base_learning_rate': received -1.0; expected a"),
        (MINIMAL, ["optimizer.plateau_factor=1"], "config keys 'optimizer.plateau_factor' (1.0) and 'optimizer.pla"),
        (MINIMAL, ["data.shuffle_buffer=-1"], "config key 'data.shuffle_buffer': received -1; expected an integer"),
        (MINIMAL, ["data.train="], "config key 'data.train' is empty; expected a folder of TFRecords"),
        (MINIMAL, ["data.image_size=[224]"], "config key 'data.image_size': received [224]; expected [height, width]"),
        (MINIMAL, ["distribute.cpu_replicas=-2"], "config key 'distribute.cpu_replicas': received -2; expected an"),
        (MINIMAL, ["faults.oom_above_per_replica_batch=-1"], "'faults.oom_above_per_replica_batch': received -1;"),
        (
            MINIMAL,
            ["memory.device_fraction=1.5"],
            "'memory.device_fraction': received 1.5; expected a share",
        ),
        (MINIMAL, ["task.metrics=[ssim]"], "config key 'task.data_range' is not set, and psnr/ssim need it"),
        (
            MINIMAL,
            ["task.metrics=[aucc]"],
            "config key 'task.metrics': received 'aucc'; expected some of accuracy, mae",
        ),
        (
            MINIMAL,
            ["task.loss=focal"],
            "config key 'task.loss': received 'focal'; expected some of binary_crossentropy",
        ),
        (MINIMAL, ["task.metrics=[auc, {name: auc}]"], "config key 'task.metrics': auc given more than once"),
        (
            MINIMAL,
            ["task.loss={label_smoothing: 0.1}"],
            "config key 'task.loss': received {'label_smoothing': 0.1}; exp",
        ),
        (MINIMAL, ["task.class_weights={0: -1}"], "config key 'task.class_weights': received {0: -1.0}; expected"),
        (MINIMAL, ["task.weight_feature=image"], "'task.weight_feature': received 'image', which is data.features, t"),
        (MINIMAL, ["task.weight_feature=label"], "'task.weight_feature': received 'label', which is data.label, the t"),
        (MINIMAL, ["train.freeze_backbone_epochs=1"], "'train.freeze_backbone_epochs' (1) needs 'model.backbone'"),
        (
            MINIMAL,
            ["model.backbone=ResNet50", "train.freeze_backbone_epochs=11"],
            "config key 'train.freeze_backbone_epochs': received 11; expected at most train.epochs (10).",
        ),
        (MINIMAL, ["model.backbone=ResNet50", "model.name=mlp"], "config keys 'model.backbone' ('ResNet50') and"),
        (MINIMAL, ["model.backbone_weights=x.h5"], "config key 'model.backbone_weights' is set without 'model.backb"),
        (MINIMAL, ["model.head_dropout=1"], "config key 'model.head_dropout': received 1.0; expected a rate in [0, 1)"),
        (MINIMAL, ["train.ema_decay=1"], "config key 'train.ema_decay': received 1.0; expected a decay in (0, 1)."),
        (MINIMAL, ["train.early_stopping_patience=0"], "'train.early_stopping_patience': received 0; expected an"),
        (MINIMAL, ["optimizer.finetune_learning_rate_factor=0"], "'optimizer.finetune_learning_rate_factor': recei"),
        (MINIMAL, ["checkpoint.keep=0"], "config section 'checkpoint': received keep=0, every_steps=0"),
        (MINIMAL, ["checkpoint.monitor=val_loss"], "received 'val_loss'; expected one of loss, accuracy (val_ values"),
        (WITH_EVAL, ["checkpoint.monitor=val_iou"], "received 'val_iou'; expected one of loss, accuracy, val_loss"),
    ],
)
def test_contradictions_are_rejected_with_one_line_naming_the_keys(tmp_path, text, overrides, expected):
    with pytest.raises(UserError) as raised:
        config_lib.load(write(tmp_path, text), overrides=overrides)
    message = str(raised.value)
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("metrics", "monitor", "expected"),
    [
        ("[iou, dice]", "val_iou", "max"),
        ("[iou, dice]", "val_dice", "max"),
        ("[iou, dice]", "iou", "max"),
        ("[psnr, ssim]", "val_psnr", "max"),
        ("[psnr, ssim]", "val_ssim", "max"),
        ("[accuracy]", "val_accuracy", "max"),
        ("[mae, mse, rmse]", "val_mae", "min"),
        ("[mae, mse, rmse]", "val_rmse", "min"),
        ("[accuracy]", "val_loss", "min"),
        ("[accuracy]", "loss", "min"),
    ],
)
def test_the_monitored_direction_comes_from_the_metric_registry(tmp_path, metrics, monitor, expected):
    # Before the registry only names ending in "accuracy" were maximised: val_iou kept its worst epoch.
    overrides = [f"task.metrics={metrics}", f"checkpoint.monitor={monitor}", "task.data_range=0-1"]
    config = config_lib.load(write(tmp_path, WITH_EVAL), overrides=overrides)
    assert config_lib.monitored(config) == (monitor, expected)


def test_the_default_monitor_is_the_eval_loss_with_eval_data_else_the_training_loss(tmp_path):
    assert config_lib.monitored(config_lib.load(write(tmp_path, WITH_EVAL))) == ("val_loss", "min")
    assert config_lib.monitored(config_lib.load(write(tmp_path, MINIMAL))) == ("loss", "min")


def test_monitor_mode_overrides_the_registry(tmp_path):
    config = config_lib.load(write(tmp_path, WITH_EVAL), overrides=["task.metrics=[mae]", "checkpoint.monitor=val_mae"])
    assert config.checkpoint.monitor_mode == "auto"
    flipped = config_lib.load(
        write(tmp_path, WITH_EVAL),
        overrides=["task.metrics=[mae]", "checkpoint.monitor=val_mae", "checkpoint.monitor_mode=max"],
    )
    assert config_lib.monitored(flipped) == ("val_mae", "max")


def test_a_monitor_the_registry_does_not_know_asks_for_monitor_mode():
    config = config_lib.Config(
        data=config_lib.DataConfig(train="x", eval="y"),
        checkpoint=config_lib.CheckpointConfig(monitor="val_custom_score"),
    )
    with pytest.raises(UserError) as raised:
        config_lib.monitored(config)
    assert str(raised.value) == (
        "config key 'checkpoint.monitor': tfkit does not know whether 'val_custom_score' is better higher or lower; "
        "expected checkpoint.monitor_mode max or min, e.g. --set checkpoint.monitor_mode=max."
    )
    explicit = config_lib.Config(
        data=config_lib.DataConfig(train="x", eval="y"),
        checkpoint=config_lib.CheckpointConfig(monitor="val_custom_score", monitor_mode="min"),
    )
    assert config_lib.monitored(explicit) == ("val_custom_score", "min")
