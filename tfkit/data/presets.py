"""Augmentation presets (``data.augmentations``): flips, random resized crops, rotations, colour jitter, MixUp, CutMix.

Each preset changes every example of a training batch differently, with random draws made by stateless ops from the
batch's seed (``tfkit.data.augment.augment_seed``) folded with the preset's place in the list: a run augments alike
every time, and a resumed run augments batch k exactly as an uninterrupted one. Keras 3's preprocessing layers
(``RandomFlip``, ``RandomRotation``, ``MixUp``, ...) are not used: they draw from a ``SeedGenerator`` whose state lives
in the layer, not in the checkpoint, and ``keras.random`` takes no tensor seed (``draw_seed`` refuses one), so a
resume could not put their draws back. The same ops are written here with ``tf.random.stateless_*``.

The geometric presets (``flip``, ``random_resized_crop``, ``rotation``) move a label that is a mask of the image's
height and width with the image (nearest-neighbour), so segmentation masks stay aligned; other labels are left as
they are. ``color_jitter`` scales brightness, contrast and saturation by factors drawn from ``[1 - s, 1 + s]``
(torchvision's ``ColorJitter``); integer images are rounded and clipped to their dtype's range, float images are not
clipped. Images keep their dtype throughout.

``mixup`` and ``cutmix`` run last, after ``data.augment`` and the label check: they blend each example with another
of the batch (a seeded permutation) by a weight drawn from Beta(alpha, alpha) per example, and turn class ids into
one-hot rows mixed by the same weight (CutMix: by the share of the pasted box's area). Per-example weights are mixed
alike. Soft labels are read by ``sparse_categorical_crossentropy`` and the categorical losses (``tfkit.losses``);
metrics read their largest class.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from tfkit.config import DataConfig
from tfkit.config.augmentations import MIXING, preset
from tfkit.errors import UserError
from tfkit.records import Schema

GEOMETRY = ("flip", "random_resized_crop", "rotation")
Transform = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]
Mix = Callable[[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]]


@dataclasses.dataclass(frozen=True)
class Presets:
    """The presets of ``data.augmentations``, each with its place in the list (which its seed is folded with).

    Attributes:
        transforms: ``(place, function(images, labels, seed))``: the presets that keep labels as they are.
        mixes: ``(place, function(images, labels, weights, seed))``: ``mixup`` and ``cutmix``.
    """

    transforms: tuple[tuple[int, Transform], ...]
    mixes: tuple[tuple[int, Mix], ...]

    def transform(self, images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Applies the flips, crops, rotations and colour jitter, in the order listed."""
        for place, function in self.transforms:
            images, labels = function(images, labels, _fold(seed, place))
        return images, labels

    def mix(
        self, images: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor, seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Applies MixUp and CutMix, in the order listed; labels come out as float32 soft rows."""
        for place, function in self.mixes:
            images, labels, weights = function(images, labels, weights, _fold(seed, place))
        return images, labels, weights


def check(schema: Schema, config: DataConfig) -> None:
    """Refuses presets the split's features or labels cannot take, before anything is read or written.

    Raises:
        UserError: An image preset on a feature that is not ``[height, width, channels]``, or a mixing preset on a
            label that is not a class id (or a row of class scores).
    """
    names = [preset(spec)[0] for spec in config.augmentations]
    feature = schema.features[config.features]
    imaged = [name for name in names if name != "mixup"]
    if imaged and (len(feature.shape) != 3 or feature.encoding == "string"):
        raise UserError(
            f"config key 'data.augmentations': {imaged[0]} needs images; received feature '{config.features}' of "
            f"shape {list(feature.shape)} ({feature.encoding}); expected [height, width, channels]. Drop "
            f"{imaged[0]}, or augment in data.augment."
        )
    label = schema.features.get(config.label)
    mixing = [name for name in names if name in MIXING]
    if mixing and label is not None and math.prod(label.shape) > 1 and len(label.shape) != 1:
        raise UserError(
            f"config key 'data.augmentations': {mixing[0]} mixes class labels; received label '{config.label}' of "
            f"shape {list(label.shape)} (a mask or a target); expected a class id per example. Drop {mixing[0]}."
        )


def build(config: DataConfig, *, num_classes: int | None) -> Presets | None:
    """The presets of ``data.augmentations``; None without any.

    Args:
        config: The ``data`` section.
        num_classes: The model's classes: the depth of the one-hot rows that ``mixup`` and ``cutmix`` make.

    Raises:
        UserError: A mixing preset without a number of classes.
    """
    transforms: list[tuple[int, Transform]] = []
    mixes: list[tuple[int, Mix]] = []
    for place, spec in enumerate(config.augmentations):
        name, arguments = preset(spec)
        if name in MIXING:
            if not num_classes:
                raise UserError(
                    f"config key 'data.augmentations': {name} needs the number of classes, and neither the label "
                    "nor model.num_classes gives it; expected model.num_classes, e.g. --set model.num_classes=10."
                )
            mixes.append((place, functools.partial(_MIXES[name], **arguments, num_classes=num_classes)))
        else:
            transforms.append((place, functools.partial(_TRANSFORMS[name], **arguments)))
    return Presets(tuple(transforms), tuple(mixes)) if transforms or mixes else None


def flip(images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor, *, horizontal: bool, vertical: bool) -> Any:
    """Flips each image left-right (and up-down with ``vertical``) with probability 1/2 each."""
    draws = tf.random.stateless_uniform([2, tf.shape(images)[0]], seed)
    mask = _is_mask(images, labels)
    for axis, wanted, draw in ((2, horizontal, draws[0]), (1, vertical, draws[1])):
        if wanted:  # exact in any dtype: no resampling
            chosen = draw < 0.5
            images = _where(chosen, tf.reverse(images, [axis]), images)
            labels = _where(chosen, tf.reverse(labels, [axis]), labels) if mask else labels
    return images, labels


def random_resized_crop(
    images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor, *, scale: tuple[float, float], ratio: tuple[float, float]
) -> Any:
    """Crops each image to a box of a random share of its area and aspect ratio, resized back to the image's size.

    A box wider or taller than the image is cut to it (torchvision tries again instead; the share then comes out
    smaller than drawn).
    """
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    draws = tf.random.stateless_uniform([4, batch], seed)
    area = scale[0] + (scale[1] - scale[0]) * draws[0]
    aspect = tf.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * draws[1])  # width / height
    box_width = tf.minimum(tf.sqrt(area * aspect * height / width), 1.0)
    box_height = tf.minimum(tf.sqrt(area / aspect * width / height), 1.0)
    top, left = draws[2] * (1.0 - box_height), draws[3] * (1.0 - box_width)
    boxes = tf.stack([top, left, top + box_height, left + box_width], axis=1)

    def crop(tensor: tf.Tensor, method: str) -> tf.Tensor:
        return tf.image.crop_and_resize(tensor, boxes, tf.range(batch), [height, width], method=method)

    return _geometric(images, labels, crop)


def rotation(images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor, *, degrees: float, fill_mode: str) -> Any:
    """Rotates each image about its centre by an angle drawn from ``[-degrees, degrees]``."""
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    angles = tf.random.stateless_uniform([batch], seed, -1.0, 1.0) * (degrees * math.pi / 180)
    cos, sin = tf.cos(angles), tf.sin(angles)
    # Output pixel (x, y) reads input pixel (cos x - sin y + dx, sin x + cos y + dy): a turn about the centre.
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2
    zeros = tf.zeros_like(angles)
    transforms = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, zeros, zeros], axis=1)

    def turn(tensor: tf.Tensor, method: str) -> tf.Tensor:
        turned = tf.raw_ops.ImageProjectiveTransformV3(
            images=tensor,
            transforms=transforms,
            output_shape=tf.constant([height, width], tf.int32),
            fill_value=0.0,
            interpolation=method.upper(),
            fill_mode=fill_mode.upper(),
        )
        return tf.ensure_shape(turned, tensor.shape)

    return _geometric(images, labels, turn)


def color_jitter(
    images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor, *, brightness: float, contrast: float, saturation: float
) -> Any:
    """Scales each image's brightness, then contrast (about its mean grey), then saturation (about its grey)."""
    draws = tf.random.stateless_uniform([3, tf.shape(images)[0]], seed, -1.0, 1.0)
    factors = [
        tf.reshape(1.0 + strength * draws[i], [-1, 1, 1, 1])
        for i, strength in enumerate((brightness, contrast, saturation))
    ]
    values = tf.cast(images, tf.float32) * factors[0]
    mean = tf.reduce_mean(_grey(values), axis=[1, 2, 3], keepdims=True)
    values = (values - mean) * factors[1] + mean
    if values.shape[-1] == 3:
        grey = _grey(values)
        values = (values - grey) * factors[2] + grey
    return _restore(values, images.dtype), labels


def mixup(
    images: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor, seed: tf.Tensor, *, alpha: float, num_classes: int
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Blends each example with its partner: ``lam * x + (1 - lam) * partner``, labels and weights alike."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    batch = tf.shape(images)[0]
    share = _beta(batch, seeds[0], seeds[1], alpha=alpha)
    partner = tf.random.experimental.stateless_shuffle(tf.range(batch), seeds[2])
    blended = _blend(tf.cast(images, tf.float32), tf.gather(tf.cast(images, tf.float32), partner), share)
    soft = _soft(labels, num_classes)
    return (
        _restore(blended, images.dtype),
        _blend(soft, tf.gather(soft, partner), share),
        _blend(weights, tf.gather(weights, partner), share),
    )


def cutmix(
    images: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor, seed: tf.Tensor, *, alpha: float, num_classes: int
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Pastes a box of each example's partner into it; labels and weights mix by the share of the area kept."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    side = tf.sqrt(1.0 - _beta(batch, seeds[0], seeds[1], alpha=alpha))  # the box's share of each side
    centre = tf.random.stateless_uniform([2, batch], seeds[2])

    def span(size: int, draw: tf.Tensor) -> tf.Tensor:
        length = tf.cast(tf.round(side * size), tf.int32)
        start = tf.cast(tf.floor(draw * size), tf.int32) - length // 2
        low, high = tf.clip_by_value(start, 0, size), tf.clip_by_value(start + length, 0, size)
        positions = tf.range(size)[None, :]
        return (positions >= low[:, None]) & (positions < high[:, None])

    rows, columns = span(height, centre[0]), span(width, centre[1])
    box = rows[:, :, None] & columns[:, None, :]  # [batch, height, width]
    partner = tf.random.experimental.stateless_shuffle(tf.range(batch), seeds[3])
    pasted = tf.where(box[..., None], tf.gather(images, partner), images)
    kept = 1.0 - tf.reduce_mean(tf.cast(box, tf.float32), axis=[1, 2])
    soft = _soft(labels, num_classes)
    return pasted, _blend(soft, tf.gather(soft, partner), kept), _blend(weights, tf.gather(weights, partner), kept)


_TRANSFORMS: dict[str, Callable[..., Any]] = {
    "flip": flip,
    "random_resized_crop": random_resized_crop,
    "rotation": rotation,
    "color_jitter": color_jitter,
}
_MIXES: dict[str, Callable[..., Any]] = {"mixup": mixup, "cutmix": cutmix}


def _fold(seed: tf.Tensor, place: int) -> tf.Tensor:
    """The preset's own seed: the batch's seed folded with its place (data.augment gets the batch's seed as is)."""
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int32), place + 1)


def _geometric(images: tf.Tensor, labels: tf.Tensor, move: Callable[[tf.Tensor, str], tf.Tensor]) -> Any:
    """Moves the images (bilinear) and, when the labels are a mask of their height and width, the mask (nearest)."""
    moved = _restore(move(tf.cast(images, tf.float32), "bilinear"), images.dtype)
    if _is_mask(images, labels):
        mask = labels if labels.shape.rank == 4 else labels[..., None]
        mask = _restore(move(tf.cast(mask, tf.float32), "nearest"), labels.dtype)
        labels = mask if labels.shape.rank == 4 else mask[..., 0]
    return moved, labels


def _is_mask(images: tf.Tensor, labels: tf.Tensor) -> bool:
    """Whether the labels are a mask of the images' height and width (``[batch, height, width(, channels)]``)."""
    return labels.shape.rank in (3, 4) and labels.shape[1:3] == images.shape[1:3]


def _where(chosen: tf.Tensor, picked: tf.Tensor, other: tf.Tensor) -> tf.Tensor:
    return tf.where(tf.reshape(chosen, [-1] + [1] * (other.shape.rank - 1)), picked, other)


def _restore(values: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """Float values back in the images' dtype: integers rounded and clipped to its range."""
    if dtype.is_integer:
        return tf.cast(tf.clip_by_value(tf.round(values), dtype.min, dtype.max), dtype)
    return tf.cast(values, dtype)


def _grey(values: tf.Tensor) -> tf.Tensor:
    if values.shape[-1] == 3:
        return tf.reduce_sum(values * tf.constant([0.299, 0.587, 0.114]), axis=-1, keepdims=True)
    return tf.reduce_mean(values, axis=-1, keepdims=True)


def _beta(batch: tf.Tensor, first: tf.Tensor, second: tf.Tensor, *, alpha: float) -> tf.Tensor:
    """One draw of Beta(alpha, alpha) per example, as a ratio of two stateless Gamma(alpha) draws."""
    a = tf.random.stateless_gamma([batch], first, alpha=alpha)
    b = tf.random.stateless_gamma([batch], second, alpha=alpha)
    return tf.math.divide_no_nan(a, a + b)


def _blend(values: tf.Tensor, partner: tf.Tensor, share: tf.Tensor) -> tf.Tensor:
    share = tf.reshape(share, [-1] + [1] * (values.shape.rank - 1))
    return share * values + (1.0 - share) * partner


def _soft(labels: tf.Tensor, num_classes: int) -> tf.Tensor:
    """Class ids as one-hot float32 rows; rows of class scores (soft labels already) as they are."""
    if num_classes > 1 and labels.shape.rank == 2 and labels.shape[-1] == num_classes:
        return tf.cast(labels, tf.float32)
    return tf.one_hot(tf.reshape(tf.cast(labels, tf.int32), [-1]), num_classes, dtype=tf.float32)
