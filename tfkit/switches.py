"""The fine-tuning switches decided between epochs: freezing the backbone, and early stopping.

Both follow from state a checkpoint holds (the step, the best step, the learning-rate scale), so a resumed run or a
recovery to an earlier checkpoint decides exactly as the uninterrupted run did.
"""

from __future__ import annotations

from collections.abc import Callable

from tfkit import models
from tfkit.config import Config
from tfkit.parts import Parts


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
