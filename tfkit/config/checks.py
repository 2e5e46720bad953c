"""The cross-key checks: values each key's type allows but the run cannot use, and keys that contradict.

``validate`` runs one small check per section, in a fixed order, and the first problem found stops the load with
one line naming the keys, what was received and what is expected. ``monitored`` says which value the best
checkpoint and reduce-on-plateau follow, and in which direction (``tfkit.metric_registry``).
"""

from __future__ import annotations

from tfkit import metric_registry
from tfkit.config.augmentations import check_augmentations
from tfkit.config.sections import Config
from tfkit.errors import UserError

# task.loss by name: the snake_case name of each keras.losses class tfkit builds (tfkit.losses), and the short names.
KERAS_LOSSES: dict[str, str] = {
    "binary_crossentropy": "BinaryCrossentropy",
    "binary_focal_crossentropy": "BinaryFocalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
    "categorical_generalized_cross_entropy": "CategoricalGeneralizedCrossEntropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "categorical_hinge": "CategoricalHinge",
    "hinge": "Hinge",
    "squared_hinge": "SquaredHinge",
    "huber": "Huber",
    "log_cosh": "LogCosh",
    "kl_divergence": "KLDivergence",
    "poisson": "Poisson",
    "cosine_similarity": "CosineSimilarity",
    "mean_absolute_error": "MeanAbsoluteError",
    "mean_absolute_percentage_error": "MeanAbsolutePercentageError",
    "mean_squared_error": "MeanSquaredError",
    "mean_squared_logarithmic_error": "MeanSquaredLogarithmicError",
    "mse": "MeanSquaredError",
    "mae": "MeanAbsoluteError",
}


def validate(config: Config) -> None:
    """Rejects values and combinations of keys that cannot hold together.

    Raises:
        UserError: Naming the keys and how to fix them.
    """
    check_train(config)
    check_optimizer(config)
    check_data(config)
    check_distribute(config)
    check_faults(config)
    check_memory(config)
    check_task(config)
    check_checkpoint(config)
    check_model(config)
    check_switches(config)
    check_augmentations(config)


def monitored(config: Config) -> tuple[str, str]:
    """The checkpoint's monitored value and whether it is minimised (``min``) or maximised (``max``).

    Raises:
        UserError: ``checkpoint.monitor_mode`` is ``auto`` and ``tfkit.metric_registry`` does not know the value.
    """
    name = config.checkpoint.monitor or ("val_loss" if config.data.eval else "loss")
    if config.checkpoint.monitor_mode != "auto":
        return name, config.checkpoint.monitor_mode
    direction = metric_registry.direction(name)
    if direction is None:
        raise UserError(
            f"config key 'checkpoint.monitor': tfkit does not know whether {name!r} is better higher or lower; "
            "expected checkpoint.monitor_mode max or min, e.g. --set checkpoint.monitor_mode=max."
        )
    return name, direction


def check_train(config: Config) -> None:
    """Exactly one batch size, counts of at least 1, and a usable clip norm and NaN recovery."""
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
    _at_least(
        1,
        {
            "train.epochs": train.epochs,
            "train.per_replica_batch_size": train.per_replica_batch_size
            if isinstance(train.per_replica_batch_size, int)
            else None,
            "train.global_batch_size": train.global_batch_size,
            "train.grad_accum_steps": train.grad_accum_steps,
            "train.steps_per_execution": train.steps_per_execution,
        },
    )
    if train.clip_norm is not None and train.clip_norm <= 0:
        raise UserError(f"config key 'train.clip_norm': received {train.clip_norm}; expected a number above 0 or null.")
    if train.nan_retries < 0 or not 0 < train.nan_lr_factor <= 1:
        raise UserError(
            f"config keys 'train.nan_retries' ({train.nan_retries}) and 'train.nan_lr_factor' "
            f"({train.nan_lr_factor}); expected retries of 0 or more and a factor in (0, 1]."
        )


def check_optimizer(config: Config) -> None:
    """A positive learning rate and base batch, no negative warmup, and a plateau schedule that lowers the rate."""
    optimizer = config.optimizer
    _at_least(1, {"optimizer.base_batch_size": optimizer.base_batch_size})
    _at_least(0, {"optimizer.warmup_steps": optimizer.warmup_steps})
    if optimizer.base_learning_rate <= 0:
        raise UserError(
            f"config key 'optimizer.base_learning_rate': received {optimizer.base_learning_rate}; "
            "expected a number above 0."
        )
    if not 0 < optimizer.plateau_factor < 1 or optimizer.plateau_patience < 1:
        raise UserError(
            f"config keys 'optimizer.plateau_factor' ({optimizer.plateau_factor}) and "
            f"'optimizer.plateau_patience' ({optimizer.plateau_patience}); expected a factor in (0, 1) and a "
            "patience of at least 1 epoch."
        )


def check_data(config: Config) -> None:
    """Training data named, a shuffle buffer of 0 or more, an image size of two numbers, classes known if unread."""
    data = config.data
    _at_least(0, {"data.shuffle_buffer": data.shuffle_buffer})
    if not data.train:
        raise UserError("config key 'data.train' is empty; expected a folder of TFRecords with a schema.json.")
    if data.image_size and (len(data.image_size) != 2 or min(data.image_size) < 1):
        raise UserError(
            f"config key 'data.image_size': received {list(data.image_size)}; expected [height, width], "
            "e.g. [224, 224]."
        )
    classified = config.task.loss == "sparse_categorical_crossentropy"
    if not data.count_records and classified and config.model.num_classes is None:
        # Without reading every record, the labels of data with no schema are never seen: the classes are unknown.
        raise UserError(
            "config key 'data.count_records' is false and 'model.num_classes' is not set; expected the number of "
            "classes, since the labels are not read. Set model.num_classes, or data.count_records: true."
        )


def check_distribute(config: Config) -> None:
    """CPU replicas only with a strategy that mirrors them on this host."""
    distribute = config.distribute
    _at_least(0, {"distribute.cpu_replicas": distribute.cpu_replicas})
    if distribute.cpu_replicas and distribute.strategy not in ("auto", "cpu", "mirrored"):
        raise UserError(
            f"config keys 'distribute.cpu_replicas' ({distribute.cpu_replicas}) and 'distribute.strategy' "
            f"('{distribute.strategy}') contradict: CPU replicas are mirrored on this host. "
            "Use --strategy auto or mirrored, or drop --cpu_replicas."
        )


def check_faults(config: Config) -> None:
    """Injected out-of-memory batches of 0 or more."""
    _at_least(0, {"faults.oom_above_per_replica_batch": config.faults.oom_above_per_replica_batch})


def check_memory(config: Config) -> None:
    """A device share in (0, 1]; ``memory.host_limit`` was checked when it was resolved."""
    fraction = config.memory.device_fraction
    if not 0 < fraction <= 1:
        raise UserError(
            f"config key 'memory.device_fraction': received {fraction}; expected a share in (0, 1], e.g. 0.8."
        )


def check_task(config: Config) -> None:
    """A loss and metrics tfkit builds, a data range for those that compare images, and usable weights."""
    task = config.task
    _check_spec(task.loss, key="task.loss", known=tuple(KERAS_LOSSES))
    for spec in task.metrics:
        _check_spec(spec, key="task.metrics", known=metric_registry.BUILDABLE)
    names = [metric_registry.spec_name(spec) for spec in task.metrics]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserError(
            f"config key 'task.metrics': {', '.join(repeated)} given more than once; expected each metric once "
            "(the logs name a metric by its name)."
        )
    ranged = [name for name in names if (metric := metric_registry.lookup(name)) and metric.needs_data_range]
    if ranged and task.data_range is None:
        raise UserError(
            "config key 'task.data_range' is not set, and psnr/ssim need it; expected 0-1, 0-255 or -1-1: the range "
            "the images are really in."
        )
    weights = task.class_weights
    if isinstance(weights, dict) and any(cls < 0 or not weight >= 0 for cls, weight in weights.items()):
        raise UserError(
            f"config key 'task.class_weights': received {weights}; expected class ids of 0 or more and weights of "
            "0 or more, e.g. {0: 1.0, 1: 4.0}."
        )
    weight = task.weight_feature
    inputs = {config.data.features: "data.features, the model's input", config.data.label: "data.label, the target"}
    if weight is not None and (not weight or weight in inputs):
        used = f", which is {inputs[weight]}" if weight in inputs else ""
        raise UserError(
            f"config key 'task.weight_feature': received {weight!r}{used}; expected another feature of the data, "
            "holding one weight per example (or null for none)."
        )


def _check_spec(spec: object, *, key: str, known: tuple[str, ...]) -> None:
    name = spec.get("name") if isinstance(spec, dict) else spec
    if not isinstance(name, str) or not name:
        raise UserError(
            f"config key '{key}': received {spec!r}; expected a name or a mapping with a name and arguments, "
            "e.g. {name: categorical_crossentropy, label_smoothing: 0.1}."
        )
    if isinstance(spec, dict) and metric_registry.is_user_code(spec) and len(spec) > 1:
        raise UserError(f"config key '{key}': received {spec!r}; user code takes no arguments, expected its name.")
    if not metric_registry.is_user_code(name) and name not in known:
        raise UserError(
            f"config key '{key}': received '{name}'; expected some of {', '.join(known)}, or user code as "
            "module:function or file.py:function."
        )


def check_checkpoint(config: Config) -> None:
    """A cadence of 0 (off) or more, and a monitored value the run measures, in a known direction."""
    checkpoint = config.checkpoint
    if checkpoint.keep < 1 or checkpoint.every_steps < 0 or checkpoint.every_minutes < 0:
        raise UserError(
            f"config section 'checkpoint': received keep={checkpoint.keep}, every_steps="
            f"{checkpoint.every_steps}, every_minutes={checkpoint.every_minutes}; expected keep of at "
            "least 1 and the others 0 (off) or more."
        )
    monitor = checkpoint.monitor
    if monitor is not None:
        names = ("loss", *(metric_registry.spec_name(spec) for spec in config.task.metrics))
        allowed = [*names, *(f"val_{name}" for name in names)] if config.data.eval else list(names)
        if monitor not in allowed:
            raise UserError(
                f"config key 'checkpoint.monitor': received {monitor!r}; expected one of {', '.join(allowed)}"
                + ("" if config.data.eval else " (val_ values need data.eval)")
                + "."
            )
    monitored(config)


def check_model(config: Config) -> None:
    """A backbone alone selects the model; head dropout is a rate; backbone weights need a backbone."""
    model = config.model
    if model.backbone and model.name != "digits_cnn":
        raise UserError(
            f"config keys 'model.backbone' ({model.backbone!r}) and 'model.name' ({model.name!r}) both select a "
            "model; expected one of them. Drop model.name to fine-tune the backbone."
        )
    if model.backbone_weights and not model.backbone:
        raise UserError(
            "config key 'model.backbone_weights' is set without 'model.backbone'; expected a backbone to load them "
            "into (model.weights loads a whole model)."
        )
    if not 0 <= model.head_dropout < 1:
        raise UserError(f"config key 'model.head_dropout': received {model.head_dropout}; expected a rate in [0, 1).")


def check_switches(config: Config) -> None:
    """Freezing needs a backbone and at most ``train.epochs``; EMA decay in (0, 1); patience of at least 1."""
    train = config.train
    _at_least(0, {"train.freeze_backbone_epochs": train.freeze_backbone_epochs})
    _at_least(1, {"train.early_stopping_patience": train.early_stopping_patience})
    if train.freeze_backbone_epochs and not config.model.backbone:
        raise UserError(
            f"config key 'train.freeze_backbone_epochs' ({train.freeze_backbone_epochs}) needs 'model.backbone'; "
            "expected a backbone to freeze, e.g. --set model.backbone=EfficientNetV2B0."
        )
    if train.freeze_backbone_epochs > train.epochs:
        raise UserError(
            f"config key 'train.freeze_backbone_epochs': received {train.freeze_backbone_epochs}; expected at most "
            f"train.epochs ({train.epochs})."
        )
    if train.ema_decay is not None and not 0 < train.ema_decay < 1:
        raise UserError(f"config key 'train.ema_decay': received {train.ema_decay}; expected a decay in (0, 1).")
    if config.optimizer.finetune_learning_rate_factor <= 0:
        raise UserError(
            "config key 'optimizer.finetune_learning_rate_factor': received "
            f"{config.optimizer.finetune_learning_rate_factor}; expected a number above 0."
        )


def _at_least(minimum: int, values: dict[str, int | None]) -> None:
    for key, value in values.items():
        if value is not None and value < minimum:
            raise UserError(f"config key '{key}': received {value}; expected an integer of at least {minimum}.")
