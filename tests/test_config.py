from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DIGITS_CONFIG, DIGITS_DATA

from tfkit import config as config_lib
from tfkit.errors import UserError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


MINIMAL = "data: {train: /data/train}\ntrain: {per_replica_batch_size: 8}\n"


def test_the_embedded_default_loads_with_paths_resolved_against_the_file():
    config = config_lib.load(DIGITS_CONFIG)
    assert config.name == "digits"
    assert config.model.name == "digits_cnn"  # `model: digits_cnn` is shorthand for `model: {name: ...}`
    assert Path(config.data.train) == DIGITS_DATA / "train"
    assert config.train.global_batch_size == 64
    assert config.train.per_replica_batch_size is None
    assert config.task.metrics == ("accuracy",)


def test_defaults_are_declared_once_and_filled_in(tmp_path):
    config = config_lib.load(write(tmp_path, MINIMAL))
    assert config.train.epochs == config_lib.TrainConfig().epochs
    assert config.optimizer == config_lib.OptimizerConfig()
    assert config.precision == "auto"
    assert config.name == "run"  # the file's stem


def test_set_overrides_parse_values_as_yaml(tmp_path):
    config = config_lib.load(
        write(tmp_path, MINIMAL),
        overrides=["train.epochs=3", "optimizer.base_learning_rate=3e-4", "train.jit_compile=true", "model=resnet"],
    )
    assert config.train.epochs == 3
    assert config.optimizer.base_learning_rate == pytest.approx(3e-4)
    assert config.train.jit_compile is True
    assert config.model.name == "resnet"


def test_set_paths_are_relative_to_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = config_lib.load(write(tmp_path, MINIMAL), overrides=["data.eval=mine/eval"])
    assert config.data.eval == str(tmp_path / "mine" / "eval")


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = config_lib.load(DIGITS_CONFIG, overrides=["train.epochs=2"])
    config_lib.dump(config, tmp_path / "config.yaml")
    assert config_lib.load(tmp_path / "config.yaml") == config


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        (MINIMAL + "optimiser: {name: adam}\n", [], "config key 'optimiser' is unknown; expected one of:"),
        (MINIMAL, ["train.epoch=3"], "config key 'train.epoch' is unknown; expected one of: clip_norm, epochs"),
        (MINIMAL, ["train.epochs=ten"], "config key 'train.epochs': received 'ten' (str); expected an integer."),
        (MINIMAL, ["train.jit_compile=1"], "config key 'train.jit_compile': received 1 (int); expected true or false"),
        (
            MINIMAL,
            ["train.global_batch_size=64"],
            "config keys 'train.per_replica_batch_size' and 'train.global_batch_size' are both set (received 8 and "
            "64); expected exactly one",
        ),
        (MINIMAL, ["optimizer.scaling=cubic"], "config key 'optimizer.scaling': received 'cubic'; expected one of "),
        (
            MINIMAL,
            ["optimizer.base_learning_rate=fast"],
            "'optimizer.base_learning_rate': received 'fast' (str); expected a number",
        ),
        (MINIMAL, ["precision=fp16"], "config key 'precision': received 'fp16'; expected one of auto, float32"),
        (MINIMAL, ["train.epochs=0"], "config key 'train.epochs': received 0; expected an integer of at least 1."),
        (MINIMAL, ["task.metrics=[accuracy, f1]"], "config key 'task.metrics': received 'f1'; expected some of"),
        (MINIMAL, ["train=5"], "config key 'train': received 5 (int); expected a mapping of keys."),
        (MINIMAL, ["epochs"], "--set received 'epochs'; expected key=value"),
        ("data: {train: x}\n", [], "neither 'train.per_replica_batch_size' nor 'train.global_batch_size' is set"),
        (
            MINIMAL,
            ["distribute.cpu_replicas=2", "distribute.strategy=tpu"],
            "config keys 'distribute.cpu_replicas' (2) and 'distribute.strategy' ('tpu') contradict",
        ),
        ("train: [1, 2\n", [], "is not valid YAML at line"),
        ("- a\n- b\n", [], "holds a list; expected a mapping of keys."),
    ],
)
def test_bad_config_is_rejected_with_one_line_naming_key_value_and_expectation(tmp_path, text, overrides, expected):
    with pytest.raises(UserError) as raised:
        config_lib.load(write(tmp_path, text), overrides=overrides)
    message = str(raised.value)
    assert expected in message
    assert "\n" not in message


def test_a_missing_config_file_says_which(tmp_path):
    with pytest.raises(UserError, match=r"config file '.*nowhere.yaml' does not exist; expected a YAML file"):
        config_lib.load(tmp_path / "nowhere.yaml")


def test_setting_the_model_by_name_keeps_the_sections_other_keys(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "model: {name: EfficientNetV2L, num_classes: 1}\ndata: {train: /data}\n"
        "train: {epochs: 1, global_batch_size: 8}\n"
    )
    config = config_lib.load(path, overrides=["model=digits_cnn"])
    assert (config.model.name, config.model.num_classes) == ("digits_cnn", 1)
