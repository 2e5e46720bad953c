"""The run config's sections: frozen dataclasses with every default declared here, once.

Loading (``tfkit.config.loader``) checks every key and type and resolves sizes, shares and durations, and the
cross-key checks (``tfkit.config.checks``) reject contradictions, so nothing downstream needs ``cfg.get(key,
default)`` or parses ``64MB`` again. A section built in Python may be given such values as text too
(``DataConfig(shuffle_buffer_bytes="10MB")``): it resolves them when built.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from tfkit import units
from tfkit.config.resolved import DURATION, LIMIT, SIZE, resolve_fields

Precision = Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"]
StrategyName = Literal["auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu"]
_HOST_LIMIT = units.Limit(text="85%", share=0.85)  # frozen, so one instance is shared safely


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
        shuffle_buffer_bytes: A bound on the shuffle buffer in bytes, written as a size such as ``64MB``: fewer
            examples are held when they are large (620 EEG windows of 100 KB in the default 64 MB). The buffer
            fills before the first batch, so a large one also delays every epoch's start.
        deterministic: Keep tf.data's output order fixed for a seed; off trades reproducibility for throughput.
        augment: ``module:function`` or ``file.py:function`` applied to each training batch after decoding:
            ``(features, labels, seed) -> (features, labels)``; ``seed`` is a shape-[2] int32 tensor for the
            ``tf.image.stateless_random_*`` ops, so runs repeat and resume exactly.
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
    """

    train: str = ""
    eval: str | None = None
    schema: str | None = None
    features: str = "image"
    label: str = "label"
    shuffle_buffer: int = 2048
    shuffle_buffer_bytes: Annotated[int, SIZE] = 64 * 10**6  # 64MB
    deterministic: bool = True
    augment: str | None = None
    image_size: tuple[int, ...] = ()
    cache: str | None = None
    autotune: bool = False
    ram_budget: Annotated[int | None, SIZE] = None
    skip_corrupt: bool = False

    def __post_init__(self) -> None:
        resolve_fields(self, prefix="data.")


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
        time_limit: Stop cleanly (exit 75, with a checkpoint) before this many seconds of wall time have passed in
            this session, written as a duration such as ``8h45m`` (for a 9-hour Kaggle session). None for no
            limit.
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
    time_limit: Annotated[float | None, DURATION] = None
    nan_retries: int = 3
    nan_lr_factor: float = 0.5

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
