"""``data.augmentations``: the presets by name, their arguments and defaults, and the checks made when a config loads.

The ops themselves are in ``tfkit.data.presets``; this module holds what a config may say, without TensorFlow, so a
config with a misspelt preset or a bad argument is refused before anything is read or built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tfkit import metric_registry
from tfkit.config.sections import Config
from tfkit.errors import UserError

# Each preset's arguments and their defaults (torchvision's and Keras' usual values).
PRESETS: dict[str, dict[str, Any]] = {
    "flip": {"horizontal": True, "vertical": False},
    "random_resized_crop": {"scale": (0.08, 1.0), "ratio": (3 / 4, 4 / 3)},
    "rotation": {"degrees": 15.0, "fill_mode": "reflect"},
    "color_jitter": {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2},
    "mixup": {"alpha": 0.2},
    "cutmix": {"alpha": 1.0},
}
MIXING = ("mixup", "cutmix")  # make soft labels from class ids
# The losses that read soft labels (tfkit.losses): the categorical family, and the sparse one through it.
SOFT_LABEL_LOSSES = (
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "kl_divergence",
    "categorical_hinge",
)
FILL_MODES = ("reflect", "constant", "nearest", "wrap")


def preset(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A checked entry of ``data.augmentations`` as its name and every argument, defaults filled in.

    Raises:
        UserError: The name is unknown, or an argument is unknown or out of its range.
    """
    name = spec.get("name") if isinstance(spec, Mapping) else spec
    if not isinstance(name, str) or name not in PRESETS:
        raise UserError(
            f"config key 'data.augmentations': received {spec!r}; expected some of {', '.join(PRESETS)}, or a "
            "mapping with a name and arguments, e.g. {name: mixup, alpha: 0.4}."
        )
    given = {key: value for key, value in spec.items() if key != "name"} if isinstance(spec, Mapping) else {}
    unknown = sorted(set(given) - set(PRESETS[name]))
    if unknown:
        raise UserError(
            f"config key 'data.augmentations': {name} takes no argument {', '.join(unknown)}; expected some of "
            f"{', '.join(PRESETS[name])}."
        )
    arguments = {**PRESETS[name], **given}
    for key, value in arguments.items():
        check, expected = _CHECKS[key]
        if not check(value):
            raise UserError(
                f"config key 'data.augmentations': {name} received {key}={value!r}; expected {expected}, "
                f"e.g. {{name: {name}, {key}: {_example(PRESETS[name][key])}}}."
            )
    if name == "flip" and not (arguments["horizontal"] or arguments["vertical"]):
        raise UserError(
            "config key 'data.augmentations': flip received horizontal=False and vertical=False; expected at least "
            "one of them true."
        )
    return name, {key: tuple(value) if isinstance(value, list) else value for key, value in arguments.items()}


def check_augmentations(config: Config) -> None:
    """Every preset known, with arguments in range; mixing presets only with a loss that reads soft labels.

    Raises:
        UserError: Naming the preset, what was received and what is expected.
    """
    names = [preset(spec)[0] for spec in config.data.augmentations]
    mixing = [name for name in names if name in MIXING]
    loss = config.task.loss.get("name") if isinstance(config.task.loss, Mapping) else config.task.loss
    if mixing and not metric_registry.is_user_code(config.task.loss) and loss not in SOFT_LABEL_LOSSES:
        raise UserError(
            f"config key 'data.augmentations': {mixing[0]} makes soft class labels, which task.loss {loss!r} does "
            f"not read (segmentation masks and regression targets cannot be mixed); expected a class loss: "
            f"{', '.join(SOFT_LABEL_LOSSES)}, or drop {mixing[0]}."
        )


def _number(low: float, high: float, *, open_low: bool = False) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return (low < value if open_low else low <= value) and value <= high

    return check


def _range(low: float, high: float) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            return False
        inside = _number(low, high, open_low=True)
        return all(inside(bound) for bound in value) and value[0] <= value[1]

    return check


def _example(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(f"{bound:.2f}".rstrip("0").rstrip(".") for bound in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "horizontal": (lambda value: isinstance(value, bool), "true or false"),
    "vertical": (lambda value: isinstance(value, bool), "true or false"),
    "scale": (_range(0, 1), "[low, high] shares of the image's area with 0 < low <= high <= 1"),
    "ratio": (_range(0, 100), "[low, high] aspect ratios (width / height) with 0 < low <= high"),
    "degrees": (_number(0, 180, open_low=True), "the largest angle in degrees, in (0, 180]"),
    "fill_mode": (lambda value: value in FILL_MODES, f"one of {', '.join(FILL_MODES)}"),
    "brightness": (_number(0, 1), "a strength in [0, 1]: factors drawn from [1 - strength, 1 + strength]"),
    "contrast": (_number(0, 1), "a strength in [0, 1]: factors drawn from [1 - strength, 1 + strength]"),
    "saturation": (_number(0, 1), "a strength in [0, 1]: factors drawn from [1 - strength, 1 + strength]"),
    "alpha": (_number(0, 1000, open_low=True), "a Beta(alpha, alpha) parameter above 0"),
}
