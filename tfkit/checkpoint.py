"""One checkpoint holds everything that makes the next step identical, so a run resumes exactly.

What is saved: the model, with its random state (dropout's seed generators); the optimizer (its slots, its
iteration count and, with float16, the loss scale); the epoch's metric accumulators; the optimizer step, the elapsed
training time and the best monitored value. The data position is not a tf.data iterator
with its shuffle buffer (hundreds of MB on real data): the order of an epoch is a function of the seed and the epoch
number (see tfkit.data), so the step alone says where to continue: epoch ``step // steps_per_epoch``, batch
``step % steps_per_epoch`` of it. The batch settings in force and the model's identity are kept in ``run.json``
beside the checkpoints, so a config that changes what the checkpoints mean is refused instead of silently
continuing.

Writes are safe against kill -9 at any moment: TensorFlow writes a checkpoint's files before it atomically updates
the ``checkpoint`` state file, so the newest state it names is always complete. A sha256 manifest written after each
save (tfkit.checksums) finds damage done later; a resume then falls back to the newest intact checkpoint. A full disk
is seen before a save (free space against the last checkpoint's size) and during it (``DiskFull``); the previous
checkpoint stays the newest.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from tfkit import atomic, checksums, disk
from tfkit.averaging import WeightAverage, in_place
from tfkit.errors import UserError

RUN_FILE = "run.json"
BEST = "best"  # checkpoints/best/: the best state by the monitored value, under TensorFlow's own ckpt-<step> names
_DISK_MARGIN = 1 << 20  # beyond the checkpoint itself: summary.json, a history row, event files


class DiskFull(Exception):  # noqa: N818 - a stop, not a bug: the previous checkpoint is intact
    """The disk has no room for the next checkpoint (seen before the save, or during it)."""


class RunState:
    """The checkpointed state of a run, with its manager.

    Create it under the strategy's scope, after the model and optimizer are built.

    Args:
        model: The model.
        optimizer: The built optimizer.
        metrics: Metrics that accumulate over an epoch, so a mid-epoch resume reports the same epoch means.
        directory: Where checkpoints go.
        keep: How many of the newest checkpoints to keep.
        identity: What the checkpoints mean (model, shapes, global batch); a resume must match it.
        batch: The batch settings in force, (per-replica batch, accumulation steps). Their product with the
            replicas is the global batch, which must not change; the split may (another machine, an OOM retry).
        learning_rate_scale: The multiplier of the learning rate that the NaN guard and the plateau schedule lower.
        average: The moving average of the weights (``train.ema_decay``), or None. Each checkpoint's ``model`` then
            holds the average and the optimizer's slots the weights training continues from (see tfkit.averaging).
    """

    def __init__(
        self,
        *,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        metrics: list[keras.metrics.Metric],
        directory: Path,
        keep: int,
        identity: dict[str, Any],
        batch: tuple[int, int],
        learning_rate_scale: tf.Variable,
        average: WeightAverage | None = None,
    ) -> None:
        self.directory = directory
        self.average = average
        self.identity = identity
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="elapsed_seconds")
        self.best = tf.Variable(math.nan, dtype=tf.float64, trainable=False, name="best")
        self.best_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="best_step")
        self.batch = tf.Variable(batch, dtype=tf.int64, trainable=False, name="batch")
        # Epochs since the monitored value last improved, for the plateau schedule.
        self.plateau_wait = tf.Variable(0, dtype=tf.int64, trainable=False, name="plateau_wait")
        self.checkpoint = tf.train.Checkpoint(
            model=model,
            optimizer=optimizer,
            # Keras 3 keeps random state (dropout's SeedGenerator) in non-trainable variables that TensorFlow's
            # object graph does not reach through the layers; without them a resumed run draws other masks.
            random_state=list(model.non_trainable_variables),
            metrics=[variable for metric in metrics for variable in metric.variables],
            step=self.step,
            elapsed=self.elapsed,
            best=self.best,
            best_step=self.best_step,
            batch=self.batch,
            plateau_wait=self.plateau_wait,
            learning_rate_scale=learning_rate_scale,
            **({"ema_swapped": average.swapped} if average is not None else {}),
        )
        self.keep = keep
        self._manager: tf.train.CheckpointManager | None = None

    @property
    def manager(self) -> tf.train.CheckpointManager:
        """TensorFlow's manager of the folder, made on first use: it reads the folder then (after a --restart)."""
        if self._manager is None:
            self._manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), max_to_keep=self.keep)
        return self._manager

    def check_resumable(self) -> None:
        """Refuses, before anything is written, a workdir whose checkpoints cannot be resumed.

        Raises:
            UserError: Another model or global batch (``check_identity``), or no intact checkpoint among several.
        """
        self.check_identity()
        paths = tf.train.get_checkpoint_state(str(self.directory)) if self.directory.is_dir() else None
        candidates = list(paths.all_model_checkpoint_paths) if paths else []
        problems = [checksums.problem(path) for path in candidates]
        if candidates and all(problems):
            raise UserError(
                f"every checkpoint in '{self.directory}' is damaged ({problems[-1]} in the newest); expected an "
                "intact one to resume. Use --restart to train again (the damaged run is kept under a new name)."
            )

    def restore(self, say: Callable[[str], None] = print) -> bool:
        """Restores the newest intact checkpoint, if there is one; a damaged newer one is skipped, saying so.

        Args:
            say: Where the line about a skipped checkpoint goes.

        Returns:
            Whether a checkpoint was restored.

        Raises:
            UserError: The workdir holds checkpoints of another model or batch, or none of them is intact.
        """
        candidates = list(reversed(self.manager.checkpoints))
        if not candidates:
            return False
        self.check_identity()
        damage = []
        for path in candidates:
            problem = checksums.problem(path)
            if problem is None:
                break
            damage.append(f"{os.path.basename(path)}: {problem}")
            say(f"tfkit: warning: checkpoint {path} is damaged ({problem}); falling back to the one before it.")
        else:
            raise UserError(
                f"every checkpoint in '{self.directory}' is damaged ({'; '.join(damage)}); expected an intact one "
                "to resume. Use --restart to train again (the damaged run is kept under a new name)."
            )
        # assert_existing_objects_matched: every variable of this model and optimizer must come from the file.
        self.checkpoint.restore(path).assert_existing_objects_matched()
        self._swap_back_average()
        best_step = int(self.best_step.numpy())
        if best_step >= 0 and _latest_name(self.directory / BEST) != f"ckpt-{best_step}":
            # Killed between the regular save and keeping it as the best: keep it now, while it still exists.
            _keep(f"{self.directory / 'ckpt'}-{best_step}", self.directory / BEST)
        return True

    def improves(self, value: float, *, mode: str) -> bool:
        """Whether ``value`` beats the best so far (``mode`` ``min`` or ``max``); a NaN never does."""
        best = float(self.best.numpy())
        if math.isnan(value):
            return False
        return math.isnan(best) or (value < best if mode == "min" else value > best)

    def saved_batch(self) -> tuple[int, int]:
        """The (per-replica batch, accumulation steps) in force when the restored checkpoint was saved."""
        per_replica, accum = (int(value) for value in self.batch.numpy())
        return per_replica, accum

    def save(self, *, step: int, elapsed: float, best: float | None = None) -> None:
        """Saves the state at ``step`` with ``elapsed`` seconds of training in all sessions.

        Args:
            step: The optimizer step.
            elapsed: Training seconds over all sessions.
            best: A new best monitored value, to keep this state in ``checkpoints/best`` too. The state is written
                once: the best keeps the regular checkpoint's own files under their ``ckpt-<step>`` names (hard
                links, or copies where the filesystem has none). A kill between the two is mended by ``restore``,
                from the ``best_step`` that the checkpoint holds.
        """
        self.step.assign(step)
        self.elapsed.assign(elapsed)
        if best is not None:
            self.best.assign(best)
            self.best_step.assign(step)
        needed = self.expected_bytes() + _DISK_MARGIN
        free = disk.free_bytes(self.directory)
        if free < needed:
            raise DiskFull(f"{free} bytes free in '{self.directory}', the next checkpoint needs about {needed}")
        try:
            if not (self.directory / RUN_FILE).exists():
                self.directory.mkdir(parents=True, exist_ok=True)
                atomic.write_text(self.directory / RUN_FILE, json.dumps(self.identity, indent=2) + "\n")
            prefix = self._save_with_average(step)
            checksums.write(prefix)
            checksums.remove_stale(self.directory)
            if best is not None:
                _keep(prefix, self.directory / BEST)
        except (OSError, tf.errors.OpError) as error:
            if not disk.is_full(error):
                raise
            self._remove_partial(step)
            raise DiskFull(f"the disk of '{self.directory}' filled up while checkpoint {step} was written") from None

    def expected_bytes(self) -> int:
        """The size of the next checkpoint: the newest one's files, or the variables' bytes before the first."""
        latest = tf.train.latest_checkpoint(str(self.directory)) if self.directory.is_dir() else None
        if latest:
            return sum(path.stat().st_size for path in checksums.files_of(latest))
        variables = self.checkpoint.model.variables if hasattr(self.checkpoint, "model") else []
        # Before the first save the optimizer may not have its slots yet: count them as two more copies (Adam).
        return 3 * sum(math.prod(variable.shape) * tf.as_dtype(variable.dtype).size for variable in variables)

    def _remove_partial(self, step: int) -> None:
        """Removes what a failed save of ``step`` left, unless ``step`` is the checkpoint the state file names."""
        latest = tf.train.latest_checkpoint(str(self.directory)) if self.directory.is_dir() else None
        if latest and os.path.basename(latest) == f"ckpt-{step}":
            return
        for leftover in self.directory.glob(f"ckpt-{step}[._]*"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)

    def _save_with_average(self, step: int) -> str:
        """Saves with the moving average in the model's place (and the weights in its slots), then swaps back."""
        with in_place(self.average):
            return self.manager.save(checkpoint_number=step)

    def _swap_back_average(self) -> None:
        """After a restore: the weights training continues from go back into the model."""
        if self.average is not None and int(self.average.swapped.numpy()) == 1:
            self.average.swap()

    def best_record(self, *, monitor: str, mode: str) -> dict[str, Any]:
        """What ``summary.json`` says of the best checkpoint: its step, the monitor, its direction and its value."""
        step = int(self.best_step.numpy())
        value = float(self.best.numpy())
        return {
            "monitor": monitor,
            "mode": mode,
            "step": step if step >= 0 else None,
            "value": None if math.isnan(value) else value,
            "checkpoint": f"{BEST}/ckpt-{step}" if step >= 0 else None,
        }

    def check_identity(self) -> None:
        """Refuses a workdir whose checkpoints mean something else (another model, shape or global batch).

        Raises:
            UserError: ``run.json`` names another model, input shape, class count or global batch.
        """
        path = self.directory / RUN_FILE
        if not path.exists():
            return
        saved = json.loads(path.read_text())
        changed = [key for key in self.identity if key in saved and saved[key] != self.identity[key]]
        if changed:
            differences = "; ".join(f"{key} was {saved[key]!r}, now {self.identity[key]!r}" for key in changed)
            raise UserError(
                f"workdir '{self.directory.parent}' holds checkpoints of another run ({differences}); expected the "
                "same model and global batch to resume. Use the original config, another --workdir, or --restart "
                "(which keeps the old run under a new name)."
            )


class CoordinatedPreemption(Exception):  # noqa: N818 - a signal, not an error
    """Raised by PreemptionCheckpointHandler's exit function once every worker has saved at the same step."""


def preemption_handler(strategy: tf.distribute.Strategy, state: RunState) -> Any:
    """tf.distribute's PreemptionCheckpointHandler for MultiWorkerMirroredStrategy, or None elsewhere.

    A SIGTERM reaches one worker of a cluster; the others would wait in the next all-reduce for ever. The handler
    tells every worker, agrees on a step, has each save at it, then calls its exit function, which raises
    ``CoordinatedPreemption`` so the loop can write its summary and exit 75 like any other stop. On one host, and on
    TPU VMs (where the handler does nothing), tfkit's own SIGTERM handling applies.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None

    def stop() -> None:
        raise CoordinatedPreemption

    return tf.distribute.experimental.PreemptionCheckpointHandler(
        strategy.cluster_resolver,
        state.manager,
        termination_config=tf.distribute.experimental.TerminationConfig(exit_fn=stop),
    )


def _keep(prefix: str, folder: Path) -> None:
    """Keeps the checkpoint at ``prefix`` (``.../ckpt-120``) in ``folder`` as its only checkpoint, under its name."""
    folder.mkdir(parents=True, exist_ok=True)
    name = os.path.basename(prefix)
    for source in Path(prefix).parent.glob(f"{name}.*"):
        atomic.place_copy(source, folder / source.name)  # TensorFlow never rewrites a checkpoint's files
    # The state file last: until it names the new checkpoint, the previous best stays the one read.
    atomic.write_text(folder / "checkpoint", f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')
    for stale in folder.glob("ckpt-*"):
        if not stale.name.startswith(f"{name}."):
            stale.unlink()


def _latest_name(folder: Path) -> str | None:
    latest = tf.train.latest_checkpoint(str(folder)) if folder.is_dir() else None
    return os.path.basename(latest) if latest else None
