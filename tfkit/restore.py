"""A finished (or stopped) run brought back to evaluate or predict: its config, its model on a strategy, a split.

The model is rebuilt and restored by ``tfkit.export.restore_model`` under the strategy's scope, so its variables
are mirrored over every replica. The strategy is chosen from the run's own ``distribute`` section, as training
chose it, unless the caller asks for a number of CPU replicas. A split is read with the run's own ``data`` section:
the same decoding, the same resize to ``data.image_size``; normalisation is the model's own.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import keras
import tensorflow as tf

from tfkit import config as config_lib
from tfkit import data, distribute, export, plan, restore_flags
from tfkit.errors import UserError
from tfkit.records import Schema


@dataclasses.dataclass(frozen=True)
class RestoredRun:
    """One run's model, restored under a strategy's scope.

    Attributes:
        root: The run folder.
        config: The run's config.
        selected: The strategy the model was built under.
        model: The restored model.
        checkpoint: The checkpoint it was restored from.
        global_batch_size: The run's global batch (the default batch to evaluate and predict with).
        num_classes: Outputs of the head.
    """

    root: Path
    config: config_lib.Config
    selected: distribute.Selected
    model: keras.Model
    checkpoint: str
    global_batch_size: int
    num_classes: int

    @property
    def pipelines(self) -> int:
        """Input pipelines the strategy creates (worker hosts)."""
        return plan.input_pipelines(self.selected)

    def per_replica_batch_size(self, global_batch_size: int | None) -> int:
        """The per-replica batch for a global batch (the run's by default), rounded up to fill every replica."""
        wanted = global_batch_size or self.global_batch_size
        return max(1, math.ceil(wanted / self.selected.replicas))


def load(
    workdir: str | os.PathLike[str],
    *,
    which: str = "best",
    cpu_replicas: int | None = None,
    selected: distribute.Selected | None = None,
    config: config_lib.Config | None = None,
) -> RestoredRun:
    """Restores a run's model under the strategy its config chooses.

    Args:
        workdir: The run folder of ``python -m tfkit.train``.
        which: ``best`` or ``last`` checkpoint.
        cpu_replicas: Mirror over this many logical CPUs instead of the run's own choice.
        selected: A strategy already chosen (several runs averaged share one); overrides ``cpu_replicas``.
        config: The run's config, when the caller has already loaded its ``config.yaml``.

    Raises:
        UserError: The folder holds no run or no checkpoint.
    """
    root = restore_flags.require_run(workdir)
    config = config or config_lib.load(root / "config.yaml")
    if selected is None:
        choice = config.distribute
        if cpu_replicas:
            choice = dataclasses.replace(choice, strategy="cpu", cpu_replicas=cpu_replicas)
        selected = distribute.select(choice)
    with selected.strategy.scope():
        model, path = export.restore_model(root, which=which)
    identity = json.loads((root / "checkpoints" / "run.json").read_text())
    return RestoredRun(
        root=root,
        config=config,
        selected=selected,
        model=model,
        checkpoint=path,
        global_batch_size=int(identity.get("global_batch_size") or 64),
        num_classes=int(identity["num_classes"]),
    )


def read_split(source: str, config: config_lib.Config, *, labeled: bool) -> tuple[Schema, config_lib.DataConfig]:
    """The schema of a split to evaluate or predict, read with the run's data section.

    Args:
        source: A folder of shards with a schema, or a glob of them.
        config: The run's config.
        labeled: Whether the split must hold the run's label (evaluate) or may lack it (predict).

    Returns:
        The schema and the data section to build its pipeline with.

    Raises:
        UserError: The split is missing, or lacks the features the model takes (or, for ``labeled``, the label).
    """
    # The run's data.schema described its training glob, not this one; a glob's schema is in its own folder.
    section = dataclasses.replace(config.data, schema=None)
    # A test split may lack the label (a competition's test files): it is required only to evaluate.
    schema = data.load_schema(source, section, split="eval" if labeled else "test")
    return schema, section


def with_images(config: config_lib.Config, images: str | os.PathLike[str] | None) -> config_lib.Config:
    """The run's config with ``images`` (``--images``) as the image folder of a CSV split; as it is for None."""
    if images is None:
        return config
    return dataclasses.replace(config, data=dataclasses.replace(config.data, images=str(images)))


def class_names(config: config_lib.Config, *, workdir: Path | None = None) -> tuple[str, ...] | None:
    """The class names of the run's label, from its training schema when that is still readable; else None."""
    try:
        # The run keeps an inferred schema, or the records of a CSV split, in its workdir: read from there.
        in_run = data.inferred_schema_path(workdir, "train").exists() if workdir is not None else False
        is_csv = isinstance(config.data.train, str) and config.data.train.lower().endswith(".csv")
        kept = workdir if workdir is not None and (in_run or is_csv) else None
        schema = data.load_schema(config.data.train, config.data, workdir=kept)
    except (UserError, tf.errors.OpError, OSError):
        return None  # the training data is not here (another machine, a Kaggle input no longer mounted)
    return schema.features[config.data.label].classes


def check_input(restored: RestoredRun, schema: Schema, section: config_lib.DataConfig, *, source: str) -> None:
    """Refuses a split whose model input has another shape than the run's model takes (images of another size).

    Raises:
        UserError: Naming the split, both shapes and the fix.
    """
    expected = getattr(restored.model, "input_shape", None)
    if not isinstance(expected, tuple) or not all(size is None or isinstance(size, int) for size in expected):
        return  # several inputs: the model's own call says what it takes
    received = tuple(schema.features[section.features].shape)
    taken = tuple(expected[1:])
    if len(received) != len(taken):
        return  # Keras adds or drops a last axis of 1 itself
    if all(want is None or want == got for want, got in zip(taken, received, strict=True)):
        return
    shown = [-1 if size is None else size for size in taken]
    raise UserError(
        f"'{source}' holds feature '{section.features}' of shape {list(received)}; the model of '{restored.root}' "
        f"takes {shown}. Resize the data to that shape, or train with data.image_size set, which resizes every split."
    )
