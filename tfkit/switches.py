"""The switches decided between epochs: freezing the backbone, early stopping, and reduce-LR-on-plateau.

Both follow from state a checkpoint holds (the step, the best step, the learning-rate scale), so a resumed run or a
recovery to an earlier checkpoint decides exactly as the uninterrupted run did.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from tfkit import models
from tfkit.checkpoint import RunState
from tfkit.config import Config
from tfkit.parts import Parts
from tfkit.plan import Plan


def freeze_backbone(config: Config, parts: Parts, *, epoch: int, position: int, say: Callable[[str], None]) -> bool:
    """Freezes the backbone for the first ``train.freeze_backbone_epochs`` epochs, then unfreezes it.

    Frozen, its weights get no gradient and its BatchNorm runs in inference mode, so nothing of it moves. The
    learning-rate factor is applied once, as the first unfrozen epoch starts from its first step: the checkpoint
    before that step holds the rate without the factor, every later one with it.

    Args:
        config: The run config.
        parts: The model (built from ``model.backbone``) and the learning-rate schedule, whose checkpointed
            ``scale`` takes the factor.
        epoch: The epoch about to train.
        position: The step within the epoch it starts from (0 unless resumed mid-epoch).
        say: Where the line announcing the unfreeze goes.

    Returns:
        Whether the model's trainable variables changed (the step must be rebuilt).
    """
    epochs = config.train.freeze_backbone_epochs
    if not epochs:
        return False
    backbone = models.backbone_of(parts.model)
    frozen = epoch < epochs
    changed = backbone.trainable == frozen
    backbone.trainable = not frozen
    if epoch == epochs and position == 0:
        factor = config.optimizer.finetune_learning_rate_factor
        parts.schedule.scale.assign(float(parts.schedule.scale.numpy()) * factor)
        say(f"tfkit: epoch {epoch + 1}: the backbone is unfrozen; learning rate x{factor:g}")
    return changed


def epochs_without_improvement(*, step: int, best_step: int, steps_per_epoch: int) -> int:
    """Whole epochs trained since the best checkpoint's step (0 before there is one)."""
    return 0 if best_step < 0 else (step - best_step) // steps_per_epoch


def early_stop(
    config: Config,
    state: RunState,
    *,
    step: int,
    epoch: int,
    plan: Plan,
    monitor: str,
    say: Callable[[str], None],
) -> dict[str, int] | None:
    """``train.early_stopping_patience``: whether the run ends early, as completed; None to go on.

    It ends once the monitored value has not improved for the patience in epochs (counted from the best step the
    checkpoint holds), before the last epoch.
    """
    patience, best_step = config.train.early_stopping_patience, int(state.best_step.numpy())
    waited = epochs_without_improvement(step=step, best_step=best_step, steps_per_epoch=plan.steps_per_epoch)
    if patience is None or waited < patience or epoch + 1 >= plan.epochs:
        return None
    say(
        f"tfkit: {monitor} has not improved for {waited} epoch(s); stopping early "
        f"(train.early_stopping_patience={patience}). checkpoints/best holds step {best_step}."
    )
    return {"epoch": epoch + 1, "best_step": best_step, "patience": patience}


def plateau(
    config: Config,
    state: RunState,
    scale: tf.Variable,
    improved: bool,
    *,
    monitor: str,
    say: Callable[[str], None],
) -> None:
    """Reduce-LR-on-plateau: lowers the rate after ``plateau_patience`` epochs without a better monitored value.

    The wait is kept in the checkpoint (``plateau_wait``), so it survives a resume.
    """
    optimizer = config.optimizer
    wait = 0 if improved else int(state.plateau_wait.numpy()) + 1
    if wait >= optimizer.plateau_patience:
        scale.assign(float(scale.numpy()) * optimizer.plateau_factor)
        say(
            f"tfkit: {monitor} has not improved for {wait} epoch(s); learning rate "
            f"x{optimizer.plateau_factor:g} (now x{float(scale.numpy()):g} of the schedule's)"
        )
        wait = 0
    state.plateau_wait.assign(wait)
