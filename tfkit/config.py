"""The run config: a tree of frozen dataclasses, loaded from YAML and overridden with ``--set a.b=value``.

Every default is declared here, once. Loading checks every key and type, so that nothing downstream needs
``cfg.get(key, default)``: unknown keys, wrong types, bad enum values and contradictions are rejected at load with one
line that names the key, the value received and what is expected.

Relative paths inside a YAML file are relative to that file's folder, so a config and its data travel together (the
embedded ``configs/digits.yaml`` points at ``../tfrecords/digits``). Paths given with ``--set`` are relative to the
current directory, as on any command line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from tfkit import units
from tfkit.errors import UserError

Precision = Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"]
StrategyName = Literal["auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu"]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which model to build.

    Attributes:
        name: ``digits_cnn`` (built in), a ``keras.applications`` name such as ``EfficientNetV2S``, or user code as
            ``module:function`` or ``path/to/file.py:function``. User functions are called as
            ``function(input_shape=..., num_classes=...)`` and return an unbuilt or built Keras model.
        weights: None, or a local weights file (``.weights.h5``) to load after building. Nothing is downloaded.
        num_classes: Outputs of the head. None takes ``num_classes`` from the label in the data schema.
    """

    name: str = "digits_cnn"
    weights: str | None = None
    num_classes: int | None = None


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the TFRecords are and how they are read (see tfkit.data for the pipeline).

    Attributes:
        train: A folder of TFRecord shards with a ``schema.json``, or a glob of shards (local or ``gs://``) with
            ``schema`` naming their schema.
        eval: The same for evaluation, or None for no evaluation.
        schema: With a glob in ``train``/``eval``: the folder (or ``schema.json``) that describes the shards; by
            default the glob's folder.
        features: The schema feature fed to the model.
        label: The schema feature used as the target.
        shuffle_buffer: Examples held in the shuffle buffer (0 turns shuffling off).
        shuffle_buffer_bytes: A bound on the shuffle buffer in bytes: fewer examples are held when they are large
            (620 EEG windows of 100 KB in the default 64 MB). The buffer fills before the first batch, so a large one
            also delays every epoch's start.
        deterministic: Keep tf.data's output order fixed for a seed; off trades reproducibility for throughput.
        augment: ``module:function`` or ``file.py:function`` applied to each training batch after decoding:
            ``(features, labels) -> (features, labels)``.
        image_size: ``[height, width]`` to resize encoded images to; needed when their sizes vary.
        cache: A file path prefix to cache the records in after the first epoch (e.g. data read from ``gs://``);
            None for no cache.
        autotune: Let tf.data tune the reader's parallelism and prefetch. Off, they are fixed (8 files at once, a
            parse per CPU core, 2 batches ahead) and memory is steady from the first batch; on, it can be faster on
            some hosts, and memory grows with running time as the tuning settles.
        ram_budget: With ``autotune``, tf.data's RAM budget for its buffers, e.g. ``2GB``; None for its default.
        skip_corrupt: Skip corrupt or truncated records, counting and reporting them; off stops the run (exit 2)
            naming the shard.
    """

    train: str = ""
    eval: str | None = None
    schema: str | None = None
    features: str = "image"
    label: str = "label"
    shuffle_buffer: int = 2048
    shuffle_buffer_bytes: str = "64MB"
    deterministic: bool = True
    augment: str | None = None
    image_size: tuple[int, ...] = ()
    cache: str | None = None
    autotune: bool = False
    ram_budget: str | None = None
    skip_corrupt: bool = False


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """What is optimised and measured.

    Attributes:
        loss: ``sparse_categorical_crossentropy``, ``binary_crossentropy``, ``mse`` or ``mae``.
        from_logits: Whether the model outputs logits (true for the built-in heads).
        metrics: Metric names: ``accuracy``, ``mae``, ``mse``, ``rmse``; ``iou`` and ``dice`` of masks thresholded
            through tfkit.masks; ``psnr`` and ``ssim`` of images in ``data_range``.
        data_range: The range images are in, for ``psnr`` and ``ssim``: ``0-1``, ``0-255`` or ``-1-1``.
    """

    loss: Literal["sparse_categorical_crossentropy", "binary_crossentropy", "mse", "mae"] = (
        "sparse_categorical_crossentropy"
    )
    from_logits: bool = True
    metrics: tuple[str, ...] = ("accuracy",)
    data_range: Literal["0-1", "0-255", "-1-1"] | None = None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How long and in what batches to train.

    Attributes:
        epochs: Passes over the training split; converted to steps once, when the run is planned.
        per_replica_batch_size: Examples per replica per micro-batch (the TPU idiom), or ``auto``: the largest that
            fits in ``memory.device_fraction``, found with real trial steps before training (see tfkit.autobatch).
            An integer is exclusive with ``global_batch_size``; ``auto`` with a ``global_batch_size`` finds how to
            split that batch into per-replica batches and accumulation steps.
        global_batch_size: Examples per optimizer step over all replicas.
        grad_accum_steps: Micro-batches accumulated into one optimizer step.
        steps_per_execution: Optimizer steps run inside one ``tf.function`` call.
        jit_compile: Compile the step with XLA.
        clip_norm: Clip gradients to this global norm after they are summed over replicas; None for no clipping.
        time_limit: Stop cleanly (exit 75, with a checkpoint) before this much wall time has passed in this
            session, e.g. ``8h45m`` for a 9-hour Kaggle session. None for no limit.
        nan_retries: After a non-finite loss, restore the last good checkpoint and retry at a lower learning rate
            this many times; then stop (exit 75), naming the step.
        nan_lr_factor: What each retry multiplies the learning rate by.
    """

    epochs: int = 10
    per_replica_batch_size: int | Literal["auto"] | None = None
    global_batch_size: int | None = None
    grad_accum_steps: int = 1
    steps_per_execution: int = 1
    jit_compile: bool = False
    clip_norm: float | None = None
    time_limit: str | None = None
    nan_retries: int = 3
    nan_lr_factor: float = 0.5


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """When the run's state is saved. It is also saved at every epoch end and whenever the run stops.

    Attributes:
        every_steps: Save every this many optimizer steps (0: not by steps).
        every_minutes: Save when this many minutes have passed since the last save (0: not by time).
        keep: How many of the newest checkpoints to keep.
        monitor: The value whose best checkpoint is kept in ``checkpoints/best``: ``loss``, a metric, or either
            with ``val_``. None means ``val_loss`` with eval data, else ``loss``. Accuracy is maximised, the rest
            minimised.
    """

    every_steps: int = 0
    every_minutes: float = 10.0
    keep: int = 3
    monitor: str | None = None


@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """Guards against running out of host memory.

    Attributes:
        host_limit: Stop cleanly (checkpoint, exit 75) when the process tree's resident memory passes this: a share
            of the memory the process can have (RAM, or the container's cgroup limit if smaller), e.g. ``85%``, or
            a size such as ``6GB``.
        device_fraction: The share of accelerator memory (host memory on CPU) that
            ``train.per_replica_batch_size: auto`` may fill.
    """

    host_limit: str = "85%"
    device_fraction: float = 0.8


@dataclasses.dataclass(frozen=True)
class FaultsConfig:
    """Faults injected on purpose, to rehearse and test recovery. All off by default; a run says when one is on.

    Attributes:
        preempt_at_step: Behave as if SIGTERM arrived once this optimizer step is done (a preemption).
        nan_loss_at_step: Make the loss (and so the gradients and weights) non-finite in this optimizer step.
        nan_loss_repeats: How many times that happens: each retry of the step sees it again until this is used up.
        oom_above_per_replica_batch: Make the compiled step raise ``ResourceExhaustedError`` whenever the per-replica
            batch is above this, as a device that is out of memory does (0: every batch runs out).
    """

    preempt_at_step: int | None = None
    nan_loss_at_step: int | None = None
    nan_loss_repeats: int = 1
    oom_above_per_replica_batch: int | None = None


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """The optimizer and its learning-rate schedule.

    Attributes:
        name: ``adam``, ``adamw``, ``sgd`` or ``rmsprop``.
        base_learning_rate: The learning rate at ``base_batch_size``.
        base_batch_size: The global batch that ``base_learning_rate`` was tuned for.
        scaling: How the rate follows the global batch: ``linear``, ``sqrt`` or ``none``.
        warmup_steps: Steps of linear warmup from 0 to the scaled rate.
        schedule: After warmup, ``cosine`` decay to 0 at the last step, ``constant``, or ``plateau``: constant,
            multiplied by ``plateau_factor`` whenever the monitored value (``checkpoint.monitor``) has not improved
            for ``plateau_patience`` epochs (Keras' ReduceLROnPlateau).
        plateau_factor: What a plateau multiplies the learning rate by.
        plateau_patience: Epochs without improvement before the rate is lowered.
        weight_decay: Decoupled weight decay (adamw, sgd).
        momentum: Momentum for sgd.
    """

    name: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    base_learning_rate: float = 1e-3
    base_batch_size: int = 64
    scaling: Literal["linear", "sqrt", "none"] = "linear"
    warmup_steps: int = 0
    schedule: Literal["cosine", "constant", "plateau"] = "cosine"
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    weight_decay: float = 0.0
    momentum: float = 0.9


@dataclasses.dataclass(frozen=True)
class DistributeConfig:
    """Which tf.distribute strategy runs the job.

    The command line's ``--strategy``, ``--tpu``, ``--tpu_address`` and ``--cpu_replicas`` set these keys.

    Attributes:
        strategy: ``auto`` picks a reachable TPU, then a ``TF_CONFIG`` cluster, then several GPUs, then one device.
        tpu_address: ``local`` on TPU VMs; ``grpc://host:port`` or a TPU name for TPU nodes.
        cpu_replicas: Split the CPU into this many logical devices and mirror over them (0: off). Rehearses a TPU
            v3-8 config on a laptop with ``8``.
    """

    strategy: StrategyName = "auto"
    tpu_address: str = "local"
    cpu_replicas: int = 0


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole run.

    Attributes:
        name: The run's name; the default workdir is ``runs/<name>``. Defaults to the config file's stem.
        model: See ``ModelConfig``.
        data: See ``DataConfig``.
        task: See ``TaskConfig``.
        train: See ``TrainConfig``.
        optimizer: See ``OptimizerConfig``.
        distribute: See ``DistributeConfig``.
        checkpoint: See ``CheckpointConfig``.
        memory: See ``MemoryConfig``.
        faults: See ``FaultsConfig``.
        precision: ``auto`` (bfloat16 on TPU, float16 on GPUs of compute capability 7.0+, else float32), or one of
            ``float32``, ``mixed_float16``, ``mixed_bfloat16``.
        seed: Seeds weights, data order and every other random choice.
    """

    name: str = "run"
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    task: TaskConfig = TaskConfig()
    train: TrainConfig = TrainConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    distribute: DistributeConfig = DistributeConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    memory: MemoryConfig = MemoryConfig()
    faults: FaultsConfig = FaultsConfig()
    precision: Precision = "auto"
    seed: int = 0


METRIC_NAMES = ("accuracy", "mae", "mse", "rmse", "iou", "dice", "psnr", "ssim")

# Keys that hold filesystem paths: a relative value in a YAML file is resolved against the file's folder.
_PATH_KEYS = ("data.train", "data.eval", "data.schema", "data.cache", "model.weights")


def load(
    path: str | os.PathLike[str] | None = None,
    *,
    overrides: Iterable[str] = (),
    values: Mapping[str, Any] | None = None,
) -> Config:
    """Loads and validates a config.

    Args:
        path: A YAML file. None starts from the defaults alone.
        overrides: ``a.b=value`` strings; each value is parsed as YAML (``3``, ``true``, ``null``, ``[a, b]``).
        values: A nested mapping applied after the file and before ``overrides``, for the Python API.

    Returns:
        The validated, frozen config.

    Raises:
        UserError: The file is missing or not YAML, or a key, type or combination is wrong.
    """
    tree: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        tree = _read_yaml(path)
        tree.setdefault("name", path.stem)
        _resolve_paths(tree, base=path.resolve().parent, source=str(path))
    if values:
        tree = _merge(tree, _normalise(dict(values)))
    for item in overrides:
        key, value = _parse_override(item)
        _set(tree, key, value)
        if key in _PATH_KEYS and isinstance(value, str):
            _resolve_paths(tree, base=Path.cwd(), source="--set", only=key)
    config = _build(Config, _normalise(tree), prefix="")
    validate(config)
    return config


def validate(config: Config) -> None:
    """Rejects combinations of keys that cannot hold together.

    Raises:
        UserError: Naming the keys and how to fix them.
    """
    train = config.train
    auto = train.per_replica_batch_size == "auto"
    if not auto and train.per_replica_batch_size is not None and train.global_batch_size is not None:
        raise UserError(
            "config keys 'train.per_replica_batch_size' and 'train.global_batch_size' are both set "
            f"(received {train.per_replica_batch_size} and {train.global_batch_size}); expected exactly one: "
            "the other is derived from the number of replicas. Remove one of them."
        )
    if train.per_replica_batch_size is None and train.global_batch_size is None:
        raise UserError(
            "neither 'train.per_replica_batch_size' nor 'train.global_batch_size' is set; expected exactly one, "
            "e.g. --set train.per_replica_batch_size=32."
        )
    positive: dict[str, int | None] = {
        "train.epochs": train.epochs,
        "train.per_replica_batch_size": train.per_replica_batch_size
        if isinstance(train.per_replica_batch_size, int)
        else None,
        "train.global_batch_size": train.global_batch_size,
        "train.grad_accum_steps": train.grad_accum_steps,
        "train.steps_per_execution": train.steps_per_execution,
        "optimizer.base_batch_size": config.optimizer.base_batch_size,
    }
    for key, value in positive.items():
        if value is not None and value < 1:
            raise UserError(f"config key '{key}': received {value}; expected an integer of at least 1.")
    non_negative = {
        "optimizer.warmup_steps": config.optimizer.warmup_steps,
        "data.shuffle_buffer": config.data.shuffle_buffer,
        "distribute.cpu_replicas": config.distribute.cpu_replicas,
        "faults.oom_above_per_replica_batch": config.faults.oom_above_per_replica_batch,
    }
    for key, value in non_negative.items():
        if value is not None and value < 0:
            raise UserError(f"config key '{key}': received {value}; expected an integer of at least 0.")
    if config.optimizer.base_learning_rate <= 0:
        raise UserError(
            f"config key 'optimizer.base_learning_rate': received {config.optimizer.base_learning_rate}; "
            "expected a number above 0."
        )
    if train.clip_norm is not None and train.clip_norm <= 0:
        raise UserError(f"config key 'train.clip_norm': received {train.clip_norm}; expected a number above 0 or null.")
    if not config.data.train:
        raise UserError("config key 'data.train' is empty; expected a folder of TFRecords with a schema.json.")
    if config.distribute.cpu_replicas and config.distribute.strategy not in ("auto", "cpu", "mirrored"):
        raise UserError(
            f"config keys 'distribute.cpu_replicas' ({config.distribute.cpu_replicas}) and 'distribute.strategy' "
            f"('{config.distribute.strategy}') contradict: CPU replicas are mirrored on this host. "
            "Use --strategy auto or mirrored, or drop --cpu_replicas."
        )
    if config.checkpoint.keep < 1 or config.checkpoint.every_steps < 0 or config.checkpoint.every_minutes < 0:
        raise UserError(
            f"config section 'checkpoint': received keep={config.checkpoint.keep}, every_steps="
            f"{config.checkpoint.every_steps}, every_minutes={config.checkpoint.every_minutes}; expected keep of at "
            "least 1 and the others 0 (off) or more."
        )
    monitor = config.checkpoint.monitor
    if monitor is not None:
        names = ("loss", *config.task.metrics)
        allowed = [*names, *(f"val_{name}" for name in names)] if config.data.eval else list(names)
        if monitor not in allowed:
            raise UserError(
                f"config key 'checkpoint.monitor': received {monitor!r}; expected one of {', '.join(allowed)}"
                + ("" if config.data.eval else " (val_ values need data.eval)")
                + "."
            )
    if not 0 < config.optimizer.plateau_factor < 1 or config.optimizer.plateau_patience < 1:
        raise UserError(
            f"config keys 'optimizer.plateau_factor' ({config.optimizer.plateau_factor}) and "
            f"'optimizer.plateau_patience' ({config.optimizer.plateau_patience}); expected a factor in (0, 1) and a "
            "patience of at least 1 epoch."
        )
    if config.train.nan_retries < 0 or not 0 < config.train.nan_lr_factor <= 1:
        raise UserError(
            f"config keys 'train.nan_retries' ({config.train.nan_retries}) and 'train.nan_lr_factor' "
            f"({config.train.nan_lr_factor}); expected retries of 0 or more and a factor in (0, 1]."
        )
    if config.train.time_limit is not None:
        duration_seconds(config.train.time_limit, key="train.time_limit")
    size_limit(config.memory.host_limit, budget=1, key="memory.host_limit")
    size_limit(config.data.shuffle_buffer_bytes, budget=1, key="data.shuffle_buffer_bytes")
    if config.data.ram_budget is not None:
        size_limit(config.data.ram_budget, budget=1, key="data.ram_budget")
    if config.data.image_size and (len(config.data.image_size) != 2 or min(config.data.image_size) < 1):
        raise UserError(
            f"config key 'data.image_size': received {list(config.data.image_size)}; expected [height, width], "
            "e.g. [224, 224]."
        )
    if not 0 < config.memory.device_fraction <= 1:
        raise UserError(
            f"config key 'memory.device_fraction': received {config.memory.device_fraction}; expected a share in "
            "(0, 1], e.g. 0.8."
        )
    if {"psnr", "ssim"} & set(config.task.metrics) and config.task.data_range is None:
        raise UserError(
            "config key 'task.data_range' is not set, and psnr/ssim need it; expected 0-1, 0-255 or -1-1: the range "
            "the images are really in."
        )
    for metric in config.task.metrics:
        if metric not in METRIC_NAMES:
            raise UserError(
                f"config key 'task.metrics': received '{metric}'; expected some of {', '.join(METRIC_NAMES)}."
            )


def monitored(config: Config) -> tuple[str, str]:
    """The checkpoint's monitored value and whether it is minimised (``min``) or maximised (``max``)."""
    name = config.checkpoint.monitor or ("val_loss" if config.data.eval else "loss")
    return name, "max" if name.endswith("accuracy") else "min"


def size_limit(text: str, *, budget: int, key: str) -> int:
    """Parses ``85%`` (of ``budget`` bytes) or a size such as ``6GB`` into bytes (see tfkit.units)."""
    return units.parse_limit(text, key=key).of(budget)


def duration_seconds(text: str, *, key: str) -> float:
    """Parses a duration such as ``8h45m`` into seconds (see tfkit.units)."""
    return units.parse_duration(text, key=key)


def to_dict(config: Config) -> dict[str, Any]:
    """Returns the config as plain YAML-ready data (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return value

    return plain(dataclasses.asdict(config))


def dump(config: Config, path: str | os.PathLike[str]) -> None:
    """Writes the resolved config as YAML; ``load`` of that file gives the same config back."""
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"config file '{path}' does not exist; expected a YAML file. Check the --config path.")
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"config file '{path}' is not valid YAML{where}; fix its syntax.") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise UserError(f"config file '{path}' holds a {type(tree).__name__}; expected a mapping of keys.")
    return tree


def _normalise(tree: dict[str, Any]) -> dict[str, Any]:
    # `model: resnet50` is shorthand for `model: {name: resnet50}`.
    if isinstance(tree.get("model"), str):
        tree = {**tree, "model": {"name": tree["model"]}}
    return tree


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set received '{item}'; expected key=value, e.g. --set train.epochs=5.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _set(tree: dict[str, Any], key: str, value: Any) -> None:
    if key == "model" and isinstance(value, str):
        key = "model.name"  # --set model=X swaps the model and keeps the section's other keys (num_classes, ...)
    parts = key.split(".")
    if isinstance(tree.get("model"), str):
        tree["model"] = {"name": tree["model"]}
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _resolve_paths(tree: dict[str, Any], *, base: Path, source: str, only: str | None = None) -> None:
    for key in _PATH_KEYS:
        if only is not None and key != only:
            continue
        section, _, leaf = key.partition(".")
        node = tree.get(section)
        if not isinstance(node, dict):
            continue
        value = node.get(leaf)
        if isinstance(value, str) and value and "://" not in value and not os.path.isabs(value):
            node[leaf] = str((base / value).resolve())


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _build(cls: type, tree: Any, *, prefix: str) -> Any:
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(tree, Mapping):
        raise UserError(f"config key '{where}': received {_describe(tree)}; expected a mapping of keys.")
    hints = typing.get_type_hints(cls)
    names = {field.name for field in dataclasses.fields(cls)}
    for key in tree:
        if key not in names:
            raise UserError(
                f"config key '{prefix}{key}' is unknown; expected one of: {', '.join(sorted(names))}. "
                "Check its spelling and section."
            )
    kwargs = {key: _convert(hints[key], value, key=f"{prefix}{key}") for key, value in tree.items()}
    return cls(**kwargs)


def _expectation(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return " or ".join(map(str, typing.get_args(hint)))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))


def _convert(hint: Any, value: Any, *, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, prefix=f"{key}.")
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        inner = [option for option in options if option is not type(None)]
        if len(inner) == 1:
            return _convert(inner[0], value, key=key)
        for option in inner:  # e.g. an integer or "auto"
            with contextlib.suppress(UserError):
                return _convert(option, value, key=key)
        expected = " or ".join(_expectation(option) for option in inner)
        raise UserError(f"config key '{key}': received {_describe(value)}; expected {expected}.")
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise UserError(f"config key '{key}': received {value!r}; expected one of {', '.join(map(str, allowed))}.")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key '{key}': received {_describe(value)}; expected a list.")
        (item_hint, _) = typing.get_args(hint)
        return tuple(_convert(item_hint, item, key=key) for item in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"config key '{key}': received {_describe(value)}; expected true or false.")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"config key '{key}': received {_describe(value)}; expected an integer.")
        return value
    if hint is float:
        if isinstance(value, str):
            # PyYAML follows YAML 1.1, which reads 3e-4 (no dot) as a string; every user writes it that way.
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"config key '{key}': received {_describe(value)}; expected a number.")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise UserError(f"config key '{key}': received {_describe(value)}; expected a string.")
        return value
    raise TypeError(f"tfkit.config cannot convert key '{key}' to {hint!r}")  # a tfkit bug, not user input
