"""The run config's sections: frozen dataclasses with every default declared here, once.

Loading (``tfkit.config.loader``) checks every key and type and resolves sizes, shares and durations, and the
cross-key checks (``tfkit.config.checks``) reject contradictions, so nothing downstream needs ``cfg.get(key,
default)`` or parses ``64MB`` again. A section built in Python may be given such values as text too
(``DataConfig(shuffle_buffer_bytes="10MB")``): it resolves them when built.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from tfkit import units
from tfkit.config.resolved import DURATION, LIMIT, SIZE, resolve_fields

Precision = Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"]
StrategyName = Literal["auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu"]
_HOST_LIMIT = units.Limit(text="85%", share=0.85)  # frozen, so one instance is shared safely
# A loss or metric: a name, or a mapping of ``name`` and the Keras class's arguments, e.g.
# ``{name: categorical_crossentropy, label_smoothing: 0.1}``.
Spec = str | dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which model to build.

    Attributes:
        name: ``digits_cnn`` (built in), a ``keras.applications`` name such as ``EfficientNetV2S``, or user code as
            ``module:function`` or ``path/to/file.py:function``. User functions are called as
            ``function(input_shape=..., num_classes=...)`` and return an unbuilt or built Keras model.
        weights: None, or a local weights file (``.weights.h5``) to load after building. Nothing is downloaded.
        num_classes: Outputs of the head. None takes ``num_classes`` from the label in the data schema.
        backbone: A ``keras.applications`` name (``EfficientNetV2S``, ``ResNet50``, ``ConvNeXtTiny``, ...) or, with
            ``keras_hub`` installed, a ``keras_hub`` preset: built without its top, with tfkit's head (pooling,
            dropout, ``num_classes`` logits) and the network's own input preprocessing; images are given on the
            0-255 scale. Set alone, it selects the model (``name`` stays at its default).
        backbone_weights: The backbone's weights: a local ``.h5`` / ``.weights.h5`` notop file or a ``keras_hub``
            preset folder (Kaggle runs offline), or ``imagenet`` (downloaded by Keras, where the network has them).
        head_pooling: How the head pools the backbone's feature map: ``avg`` or ``max``.
        head_dropout: Dropout rate before the head's dense layer (0: none).
    """

    name: str = "digits_cnn"
    weights: str | None = None
    num_classes: int | None = None
    backbone: str | None = None
    backbone_weights: str | None = None
    head_pooling: Literal["avg", "max"] = "avg"
    head_dropout: float = 0.0


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the TFRecords are and how they are read (see tfkit.data for the pipeline).

    Attributes:
        train: A folder of TFRecord shards with a ``schema.json``, or a folder, a glob or a list of globs of
            TFRecord files of any name (``.tfrec``, ``.tfrecords``, none), local or ``gs://``, gzip or not. Without
            a schema, one is inferred from the records and written to ``WORKDIR/schema-train.json``. Or a CSV with
            ``images`` naming its image folder.
        eval: The same for evaluation, or None for no evaluation.
        test: The same for prediction (tfkit.predict); its label is optional. None for none.
        schema: The folder (or schema file, e.g. one ``python -m tfkit.records schema`` wrote) that describes the
            files of ``train``/``eval``/``test``; by default the glob's folder's ``schema.json``, else inferred.
        id: The feature (or CSV column) that names each example, written next to predictions.
        images: With a CSV in ``train``/``eval``/``test``: the folder of its images, named by the ``id`` column.
        count_records: Count the records of data without a schema by reading every one (and with them every label,
            which gives the number of classes). Off, counts come from Kaggle-style names (``00-192x192-798.tfrec``),
            and ``model.num_classes`` must be set.
        features: The schema feature fed to the model.
        label: The schema feature used as the target.
        shuffle_buffer: Examples held in the shuffle buffer (0 turns shuffling off).
        shuffle_buffer_bytes: A bound on the shuffle buffer in bytes, written as a size such as ``64MB``: fewer
            examples are held when they are large (620 EEG windows of 100 KB in the default 64 MB). The buffer
            fills before the first batch, so a large one also delays every epoch's start.
        deterministic: Keep tf.data's output order fixed for a seed; off trades reproducibility for throughput.
        augment: ``module:function`` or ``file.py:function`` applied to each training batch after decoding:
            ``(features, labels, seed) -> (features, labels)``; ``seed`` is a shape-[2] int32 tensor for the
            ``tf.image.stateless_random_*`` ops, so runs repeat and resume exactly.
        augmentations: Augmentation presets for training batches, each a name or a mapping of ``name`` and its
            arguments: ``flip`` (``vertical``), ``random_resized_crop`` (``scale``, ``ratio``), ``rotation``
            (``degrees``, ``fill_mode``), ``color_jitter`` (``brightness``, ``contrast``, ``saturation``), ``mixup``
            (``alpha``) and ``cutmix`` (``alpha``); see ``tfkit.data.presets``. Seeded like ``augment``; they run
            in the order listed, before ``augment``, except ``mixup`` and ``cutmix``, which run after it and make
            soft labels (a class loss reads them).
        image_size: ``[height, width]`` to resize encoded images to; needed when their sizes vary.
        cache: A file path prefix to cache the records in after the first epoch (e.g. data read from ``gs://``);
            None for no cache.
        autotune: Let tf.data tune the reader's parallelism and prefetch. Off, they are fixed (8 files at once, a
            parse per CPU core, 2 batches ahead) and memory is steady from the first batch; on, it can be faster on
            some hosts, and memory grows with running time as the tuning settles.
        ram_budget: With ``autotune``, tf.data's RAM budget for its buffers in bytes, written as a size such as
            ``2GB``; None for its default.
        skip_corrupt: Skip corrupt or truncated records, counting and reporting them; off stops the run (exit 2)
            naming the shard.
        allow_nonfinite: Train on float features holding NaN or infinite values. Off, training refuses them (exit 2)
            naming the feature, the count and the first record: from the counts ``records write`` keeps in the
            schema, or from the first records of data written elsewhere.
    """

    train: str | tuple[str, ...] = ""
    eval: str | tuple[str, ...] | None = None
    test: str | tuple[str, ...] | None = None
    schema: str | None = None
    id: str = "id"
    images: str | None = None
    count_records: bool = True
    features: str = "image"
    label: str = "label"
    shuffle_buffer: int = 2048
    shuffle_buffer_bytes: Annotated[int, SIZE] = 64 * 10**6  # 64MB
    deterministic: bool = True
    augment: str | None = None
    augmentations: tuple[Spec, ...] = ()
    image_size: tuple[int, ...] = ()
    cache: str | None = None
    autotune: bool = False
    ram_budget: Annotated[int | None, SIZE] = None
    skip_corrupt: bool = False
    allow_nonfinite: bool = False

    def __post_init__(self) -> None:
        resolve_fields(self, prefix="data.")


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """What is optimised and measured.

    Attributes:
        loss: Any Keras loss by name (``sparse_categorical_crossentropy``, ``categorical_crossentropy``,
            ``categorical_focal_crossentropy``, ``binary_crossentropy``, ``huber``, ``mse``, ``mae``, ...), or a
            mapping of ``name`` and its arguments (``{name: categorical_crossentropy, label_smoothing: 0.1}``), or
            user code as ``module:function`` / ``file.py:function`` taking ``(labels, outputs)`` and returning one
            loss per example (see ``tfkit.losses``). Integer, one-hot and soft labels all work.
        from_logits: Whether the model outputs logits (true for the built-in heads).
        metrics: Metric names or mappings with arguments: ``accuracy``, ``mae``, ``mse``, ``rmse``; ``iou`` and
            ``dice`` of masks thresholded through tfkit.masks; ``psnr`` and ``ssim`` of images in ``data_range``;
            any Keras metric (``auc``, ``{name: top_k_categorical_accuracy, k: 3}``, ``f1_score``, ``precision``,
            ``recall``, ...); or ``module:function`` returning per-example values (see ``tfkit.metric_builder``).
        data_range: The range images are in, for ``psnr`` and ``ssim``: ``0-1``, ``0-255`` or ``-1-1``.
        class_weights: ``balanced`` (each class weighted by ``examples / (classes * examples of the class)``,
            counted over the training split) or a mapping ``{class id: weight}`` (classes not named weigh 1). Each
            example's loss is multiplied by its class's weight, in training and eval, on every strategy.
        weight_feature: A numeric scalar feature of the data (int64 or float, one value per example) holding each
            example's weight, or None (every example weighs 1). The weight multiplies the example's loss and is its
            sample weight in every metric (a weighted mean, as Keras' ``sample_weight`` gives), in training and in
            the run's eval (``val_`` figures), on every strategy; with ``class_weights`` the two multiply. The
            feature is never an input of the model, and eval padding keeps weight 0. ``data.train`` and
            ``data.eval`` must hold it, with finite weights of 0 or more (refused at start, naming the record).
            ``tfkit.evaluate`` and ``tfkit.predict`` neither read nor need it.
    """

    loss: Spec = "sparse_categorical_crossentropy"
    from_logits: bool = True
    metrics: tuple[Spec, ...] = ("accuracy",)
    data_range: Literal["0-1", "0-255", "-1-1"] | None = None
    class_weights: Literal["balanced"] | dict[int, float] | None = None
    weight_feature: str | None = None


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
        time_limit: Stop cleanly (exit 75, with a checkpoint) before this many seconds of wall time have passed in
            this session, written as a duration such as ``8h45m`` (for a 9-hour Kaggle session). None for no
            limit.
        nan_retries: After a non-finite loss, restore the last good checkpoint and retry at a lower learning rate
            this many times; then stop (exit 75), naming the step.
        nan_lr_factor: What each retry multiplies the learning rate by.
        freeze_backbone_epochs: Keep ``model.backbone`` frozen for this many epochs (BatchNorm in inference mode,
            so its statistics do not move either), training the head alone, then train it all at the learning rate
            times ``optimizer.finetune_learning_rate_factor``. May equal ``epochs`` (frozen throughout).
        ema_decay: Keep an exponential moving average of the weights with this decay (e.g. 0.999) and use it for
            eval, the best checkpoint and export; None for none.
        early_stopping_patience: End the run (as completed) when the monitored value (``checkpoint.monitor``, in
            its direction) has not improved for this many epochs; ``checkpoints/best`` keeps the best weights.
            None for no early stopping.
    """

    epochs: int = 10
    per_replica_batch_size: int | Literal["auto"] | None = None
    global_batch_size: int | None = None
    grad_accum_steps: int = 1
    steps_per_execution: int = 1
    jit_compile: bool = False
    clip_norm: float | None = None
    time_limit: Annotated[float | None, DURATION] = None
    nan_retries: int = 3
    nan_lr_factor: float = 0.5
    freeze_backbone_epochs: int = 0
    ema_decay: float | None = None
    early_stopping_patience: int | None = None

    def __post_init__(self) -> None:
        resolve_fields(self, prefix="train.")


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """When the run's state is saved. It is also saved at every epoch end and whenever the run stops.

    Attributes:
        every_steps: Save every this many optimizer steps (0: not by steps).
        every_minutes: Save when this many minutes have passed since the last save (0: not by time).
        keep: How many of the newest checkpoints to keep.
        monitor: The value whose best checkpoint is kept in ``checkpoints/best``, and which reduce-on-plateau
            watches: ``loss``, a metric, or either with ``val_``. None means ``val_loss`` with eval data, else
            ``loss``.
        monitor_mode: Whether the monitored value is better higher (``max``) or lower (``min``). ``auto`` takes
            the direction from ``tfkit.metric_registry``: accuracy, IoU, Dice, PSNR and SSIM are maximised, loss
            and errors minimised.
    """

    every_steps: int = 0
    every_minutes: float = 10.0
    keep: int = 3
    monitor: str | None = None
    monitor_mode: Literal["auto", "min", "max"] = "auto"


@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """Guards against running out of host memory.

    Attributes:
        host_limit: Stop cleanly (checkpoint, exit 75) when the process tree's resident memory passes this: a share
            of the memory the process can have (RAM, or the container's cgroup limit if smaller), e.g. ``85%``, or
            a size such as ``6GB``. ``host_limit.of(budget)`` gives the bytes.
        device_fraction: The share of accelerator memory (host memory on CPU) that
            ``train.per_replica_batch_size: auto`` may fill.
    """

    host_limit: Annotated[units.Limit, LIMIT] = _HOST_LIMIT
    device_fraction: float = 0.8

    def __post_init__(self) -> None:
        resolve_fields(self, prefix="memory.")


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
        finetune_learning_rate_factor: What the learning rate is multiplied by once a frozen backbone is unfrozen
            (``train.freeze_backbone_epochs``).
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
    finetune_learning_rate_factor: float = 1.0


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
