"""Mixed precision, chosen per device: bfloat16 on TPU, float16 with loss scaling on recent GPUs, float32 otherwise.

The policy is a Keras dtype policy, set only while the model is built (``policy`` is a context manager), so that a
notebook that runs tfkit twice, or builds its own models afterwards, is not left with a changed global. Loss scaling
goes through Keras 3's ``LossScaleOptimizer`` and ``optimizer.scale_loss``; with float32 and bfloat16 the optimizer's
``scale_loss`` is the identity, so the training step has no branch for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras

from tfkit.errors import UserError

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def choose(precision: str, *, device_kind: str, gpu_compute_capability: tuple[int, int] | None) -> str:
    """Resolves ``precision: auto`` for the device, and checks an explicit choice.

    Args:
        precision: ``auto`` or one of ``POLICIES``.
        device_kind: ``TPU``, ``GPU`` or ``CPU``.
        gpu_compute_capability: The GPU's (major, minor), when ``device_kind`` is GPU.

    Returns:
        A Keras dtype policy name.

    Raises:
        UserError: float16 was asked for on a TPU, which has no float16 units.
    """
    if precision == "auto":
        if device_kind == "TPU":
            return "mixed_bfloat16"
        if device_kind == "GPU" and gpu_compute_capability is not None and gpu_compute_capability >= (7, 0):
            return "mixed_float16"
        return "float32"
    if precision == "mixed_float16" and device_kind == "TPU":
        raise UserError(
            "config key 'precision': received 'mixed_float16' on a TPU; expected mixed_bfloat16 or float32 "
            "(TPUs compute in bfloat16). Use --set precision=auto."
        )
    return precision


@contextlib.contextmanager
def policy(name: str) -> Iterator[None]:
    """Sets the global Keras dtype policy while the model is built, and restores the previous one after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def wrap_optimizer(optimizer: keras.optimizers.Optimizer, name: str) -> keras.optimizers.Optimizer:
    """Adds dynamic loss scaling for float16; other policies need none."""
    if name == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def loss_scale(optimizer: keras.optimizers.Optimizer) -> float:
    """The current loss scale: the dynamic scale for float16, 1.0 for an optimizer without loss scaling."""
    scale = getattr(optimizer, "dynamic_scale", None)
    return 1.0 if scale is None else float(scale.numpy())
