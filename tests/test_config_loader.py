from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import DIGITS_CONFIG, DIGITS_DATA, REPO, python_script

from tfkit import config as config_lib
from tfkit import units
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


def test_sizes_shares_and_durations_are_resolved_once_at_load(tmp_path):
    config = config_lib.load(
        write(tmp_path, MINIMAL + "memory: {host_limit: 6GB}\n"),
        overrides=["data.shuffle_buffer_bytes=512MiB", "data.ram_budget=2GB", "train.time_limit=8h45m"],
    )
    assert config.data.shuffle_buffer_bytes == 512 * 2**20
    assert config.data.ram_budget == 2 * 10**9
    assert config.train.time_limit == 8 * 3600 + 45 * 60
    assert config.memory.host_limit == units.Limit(text="6GB", bytes=6 * 10**9)
    defaults = config_lib.load(write(tmp_path, MINIMAL))
    assert defaults.memory.host_limit.of(1000) == 850  # 85%, of the budget known at run time
    assert (defaults.data.shuffle_buffer_bytes, defaults.data.ram_budget, defaults.train.time_limit) == (
        64 * 10**6,
        None,
        None,
    )


def test_dump_writes_units_as_people_write_them_and_reads_back_identically(tmp_path):
    config = config_lib.load(
        REPO / "configs" / "efficientnetv2_tpu.yaml",
        overrides=["memory.host_limit=70%", "data.ram_budget=1500000", "train.time_limit=90.5"],
    )
    config_lib.dump(config, tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text()
    for line in ("host_limit: 70%", "shuffle_buffer_bytes: 512MB", "ram_budget: 1500KB", "time_limit: 90.5"):
        assert line in text
    assert config_lib.load(tmp_path / "config.yaml") == config
    assert config.train.time_limit == 90.5
    as_written = config_lib.to_dict(config_lib.load(REPO / "configs" / "efficientnetv2_tpu.yaml"))
    assert (as_written["train"]["time_limit"], as_written["memory"]["host_limit"]) == ("8h45m", "85%")


def test_sections_built_in_python_resolve_text_too():
    data = config_lib.DataConfig(train="x", shuffle_buffer_bytes="10MB")  # type: ignore[arg-type]
    assert data.shuffle_buffer_bytes == 10 * 10**6
    memory = config_lib.MemoryConfig(host_limit="50%")  # type: ignore[arg-type]
    assert memory.host_limit.of(10) == 5
    assert config_lib.TrainConfig(time_limit="1h").time_limit == 3600.0  # type: ignore[arg-type]
    with pytest.raises(UserError, match=r"config key 'data\.ram_budget': received 'lots'"):
        config_lib.DataConfig(ram_budget="lots")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        (MINIMAL + "optimiser: {name: adam}\n", [], "config key 'optimiser' is unknown; expected one of:"),
        (
            MINIMAL,
            ["train.epoch=3"],
            "config key 'train.epoch' is unknown; expected one of: clip_norm, early_stopping_patience, ema_decay, ep",
        ),
        (MINIMAL, ["train.epochs=ten"], "config key 'train.epochs': received 'ten' (str); expected an integer."),
        (MINIMAL, ["train.jit_compile=1"], "config key 'train.jit_compile': received 1 (int); expected true or false"),
        (MINIMAL, ["optimizer.scaling=cubic"], "config key 'optimizer.scaling': received 'cubic'; expected one of "),
        (
            MINIMAL,
            ["optimizer.base_learning_rate=fast"],
            "'optimizer.base_learning_rate': received 'fast' (str); expected a number",
        ),
        (MINIMAL, ["precision=fp16"], "config key 'precision': received 'fp16'; expected one of auto, float32"),
        (MINIMAL, ["train=5"], "config key 'train': received 5 (int); expected a mapping of keys."),
        (MINIMAL, ["epochs"], "--set received 'epochs'; expected key=value"),
        ("train: [1, 2\n", [], "is not valid YAML at line"),
        ("- a\n- b\n", [], "holds a list; expected a mapping of keys."),
        (MINIMAL, ["memory.host_limit=150%"], "config key 'memory.host_limit': received '150%'; expected a share"),
        (MINIMAL, ["memory.host_limit=true"], "config key 'memory.host_limit': received True (bool); expected a"),
        (MINIMAL, ["data.shuffle_buffer_bytes=50%"], "'data.shuffle_buffer_bytes': received '50%'; expected a size"),
        (MINIMAL, ["train.time_limit=soon"], "config key 'train.time_limit': received 'soon'; expected a duration"),
        (MINIMAL, ["train.time_limit=0"], "config key 'train.time_limit': received 0; expected a duration above zero"),
        (MINIMAL, ["checkpoint.monitor_mode=up"], "config key 'checkpoint.monitor_mode': received 'up'; expected"),
    ],
)
def test_bad_config_is_rejected_with_one_line_naming_key_value_and_expectation(tmp_path, text, overrides, expected):
    with pytest.raises(UserError) as raised:
        config_lib.load(write(tmp_path, text), overrides=overrides)
    message = str(raised.value)
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize("written", ["nan", ".nan", "inf", "-.inf", "-Infinity"])
@pytest.mark.parametrize("key", ["optimizer.base_learning_rate", "train.clip_norm", "optimizer.momentum"])
def test_non_finite_numbers_are_refused_for_every_float_key(tmp_path, key, written):
    with pytest.raises(UserError) as raised:
        config_lib.load(write(tmp_path, MINIMAL), overrides=[f"{key}={written}"])
    assert f"config key '{key}': received" in str(raised.value)
    assert str(raised.value).endswith("expected a finite number.")


def test_a_non_finite_number_in_the_yaml_file_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"^config key 'optimizer.base_learning_rate': received nan; expected a finite"):
        config_lib.load(write(tmp_path, MINIMAL + "optimizer:\n  base_learning_rate: .nan\n"))
    assert math.isfinite(config_lib.load(write(tmp_path, MINIMAL)).optimizer.base_learning_rate)


def test_a_key_given_twice_is_refused_naming_the_key_and_lines(tmp_path):
    text = "data: {train: /data/train}\ntrain:\n  epochs: 3\n  per_replica_batch_size: 8\n  epochs: 5\n"
    with pytest.raises(UserError) as raised:
        config_lib.load(write(tmp_path, text))
    assert str(raised.value) == (
        f"config file '{tmp_path / 'run.yaml'}' gives key 'epochs' twice, at lines 3 and 5; expected each key once "
        "(the later would silently win). Remove one of them."
    )
    with pytest.raises(UserError, match=r"gives key 'train' twice, at lines 2 and 3;"):
        config_lib.load(write(tmp_path, MINIMAL + "train: {epochs: 2}\n"))
    with pytest.raises(UserError, match=r"^--set received 'train=\{epochs: 1, epochs: 2\}', which gives key 'epochs'"):
        config_lib.load(write(tmp_path, MINIMAL), overrides=["train={epochs: 1, epochs: 2}"])


def test_the_same_key_in_different_sections_is_not_a_duplicate(tmp_path):
    config = config_lib.load(write(tmp_path, MINIMAL + "model: {name: mlp}\ntask: {loss: mse, metrics: [mae]}\n"))
    assert (config.model.name, config.task.loss) == ("mlp", "mse")


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


def test_loading_a_config_imports_no_tensorflow(tmp_path):
    script = (
        "import sys\nfrom tfkit import config\nconfig.load(sys.argv[1] if len(sys.argv) > 1 else "
        f"{str(DIGITS_CONFIG)!r})\nimport tfkit.metric_registry\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('tensorflow', 'keras')))"
    )
    result = python_script(script, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
