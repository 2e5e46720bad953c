"""The run config: a tree of frozen dataclasses, loaded from YAML and overridden with ``--set a.b=value``.

Every default is declared once, in ``tfkit.config.sections``. Loading (``tfkit.config.loader``) checks every key and
type and resolves sizes, shares and durations to bytes and seconds; the cross-key checks (``tfkit.config.checks``)
then reject contradictions. Each problem stops the load with one line that names the key, the value received and
what is expected, so nothing downstream needs ``cfg.get(key, default)``.
"""

from __future__ import annotations

from tfkit.config.checks import monitored, validate
from tfkit.config.loader import dump, load, to_dict
from tfkit.config.sections import (
    CheckpointConfig,
    Config,
    DataConfig,
    DistributeConfig,
    FaultsConfig,
    MemoryConfig,
    ModelConfig,
    OptimizerConfig,
    Precision,
    StrategyName,
    TaskConfig,
    TrainConfig,
)

__all__ = [
    "CheckpointConfig",
    "Config",
    "DataConfig",
    "DistributeConfig",
    "FaultsConfig",
    "MemoryConfig",
    "ModelConfig",
    "OptimizerConfig",
    "Precision",
    "StrategyName",
    "TaskConfig",
    "TrainConfig",
    "dump",
    "load",
    "monitored",
    "to_dict",
    "validate",
]
