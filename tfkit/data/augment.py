"""The user's augmentation (``data.augment``), applied to each training batch after decoding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from tfkit import user_code
from tfkit.config import DataConfig
from tfkit.errors import UserError


def augmenter(config: DataConfig) -> Callable[..., Any] | None:
    """The ``data.augment`` function, checked to return ``(features, labels)``; None without one."""
    if not config.augment:
        return None
    function = user_code.load_function(config.augment, key="data.augment")

    def apply(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        result = function(x, y)
        if not isinstance(result, tuple) or len(result) != 2:
            raise UserError(
                f"config key 'data.augment': '{config.augment}' returned {type(result).__name__}; expected a "
                "(features, labels) tuple."
            )
        return result

    return apply
