"""Image metrics on the right scale: MAE, MSE, RMSE, PSNR and SSIM with an explicit data range.

The seed's bug: MSE computed on images in [0, 1] is 0.0014, and read as if on [0, 255] it looks perfect, when the
same error on the 0-255 scale is 93. Here every function is told which range its inputs are in (``data_range``:
``0-1``, ``0-255`` or ``-1-1``). Inputs are converted from that range, and values outside it are an error, not a
silent mis-scaling. MAE, MSE and RMSE are reported on an explicit ``report_range``, by default the 0-255 scale on
which image errors are usually quoted. PSNR (dB) and SSIM do not depend on the scale.

Each image (the first axis is the batch) gets its own value, and a batch reports their mean, as ``tf.image.psnr``
and ``tf.image.ssim`` do. The Keras metric classes at the end average over all the images they are updated with.
"""

from __future__ import annotations

from typing import Literal

import keras
import tensorflow as tf

from tfkit import masks

DataRange = Literal["0-1", "0-255", "-1-1"]
RANGES: dict[str, tuple[float, float]] = {"0-1": (0.0, 1.0), "0-255": (0.0, 255.0), "-1-1": (-1.0, 1.0)}
_SLACK = 1e-6  # float rounding at the edges of a range is not an error


def to_unit(images: tf.Tensor, *, data_range: str) -> tf.Tensor:
    """Converts images from their declared range to float32 in [0, 1].

    Raises:
        ValueError: The range is unknown, or (eagerly) a value lies outside it. In a ``tf.function`` the check is a
            ``tf.debugging`` assertion with the same message.
    """
    if data_range not in RANGES:
        raise ValueError(f"data_range received {data_range!r}; expected one of {', '.join(RANGES)}.")
    low, high = RANGES[data_range]
    values = tf.cast(images, tf.float32)  # uint8 and float inputs alike; int to float is exact
    message = (
        f"image values lie outside the declared data_range {data_range} ([{low:g}, {high:g}]); declare the range the "
        "tensor is really in (0-1, 0-255 or -1-1)"
    )
    span = high - low
    if tf.executing_eagerly():
        smallest, largest = float(tf.reduce_min(values)), float(tf.reduce_max(values))
        if smallest < low - _SLACK * span or largest > high + _SLACK * span:
            raise ValueError(f"{message}: they span [{smallest:g}, {largest:g}].")
    else:
        tf.debugging.assert_greater_equal(values, low - _SLACK * span, message=message)
        tf.debugging.assert_less_equal(values, high + _SLACK * span, message=message)
    return (values - low) / span


def _per_image_mean(values: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def squared_error_per_image(y_true: tf.Tensor, y_pred: tf.Tensor, *, data_range: str, report_range: str) -> tf.Tensor:
    """Each image's mean squared error on the ``report_range`` scale."""
    span = _span(report_range)
    diff = to_unit(y_true, data_range=data_range) - to_unit(y_pred, data_range=data_range)
    return _per_image_mean(tf.square(diff)) * span * span


def absolute_error_per_image(y_true: tf.Tensor, y_pred: tf.Tensor, *, data_range: str, report_range: str) -> tf.Tensor:
    """Each image's mean absolute error on the ``report_range`` scale."""
    diff = to_unit(y_true, data_range=data_range) - to_unit(y_pred, data_range=data_range)
    return _per_image_mean(tf.abs(diff)) * _span(report_range)


def mae(y_true: tf.Tensor, y_pred: tf.Tensor, *, data_range: str, report_range: str = "0-255") -> tf.Tensor:
    """Mean absolute error, on the ``report_range`` scale."""
    return tf.reduce_mean(absolute_error_per_image(y_true, y_pred, data_range=data_range, report_range=report_range))


def mse(y_true: tf.Tensor, y_pred: tf.Tensor, *, data_range: str, report_range: str = "0-255") -> tf.Tensor:
    """Mean squared error, on the ``report_range`` scale."""
    return tf.reduce_mean(squared_error_per_image(y_true, y_pred, data_range=data_range, report_range=report_range))


def rmse(y_true: tf.Tensor, y_pred: tf.Tensor, *, data_range: str, report_range: str = "0-255") -> tf.Tensor:
    """Root of the mean squared error over all images, on the ``report_range`` scale."""
    return tf.sqrt(mse(y_true, y_pred, data_range=data_range, report_range=report_range))


def psnr_per_image(y_true: tf.Tensor, y_pred: tf.Tensor, *, data_range: str) -> tf.Tensor:
    """Each image's peak signal-to-noise ratio in dB (identical images give +inf)."""
    unit_mse = squared_error_per_image(y_true, y_pred, data_range=data_range, report_range="0-1")
    return 10.0 * tf.math.log(1.0 / unit_mse) / tf.math.log(10.0)


def psnr(y_true: tf.Tensor, y_pred: tf.Tensor, *, data_range: str) -> tf.Tensor:
    """Mean PSNR over the batch's images, in dB."""
    return tf.reduce_mean(psnr_per_image(y_true, y_pred, data_range=data_range))


def ssim_per_image(y_true: tf.Tensor, y_pred: tf.Tensor, *, data_range: str) -> tf.Tensor:
    """Each image's structural similarity (Gaussian window 11, sigma 1.5), images shaped [batch, H, W, C]."""
    unit_true, unit_pred = to_unit(y_true, data_range=data_range), to_unit(y_pred, data_range=data_range)
    return tf.image.ssim(unit_true, unit_pred, max_val=1.0)


def ssim(y_true: tf.Tensor, y_pred: tf.Tensor, *, data_range: str) -> tf.Tensor:
    """Mean SSIM over the batch's images."""
    return tf.reduce_mean(ssim_per_image(y_true, y_pred, data_range=data_range))


def _span(report_range: str) -> float:
    if report_range not in RANGES:
        raise ValueError(f"report_range received {report_range!r}; expected one of {', '.join(RANGES)}.")
    low, high = RANGES[report_range]
    return high - low


class MaskOverlap(keras.metrics.Metric):
    """IoU or Dice of binary masks over a whole dataset, with predictions thresholded by ``tfkit.masks.binary``.

    Intersections and unions are summed over every pixel of every image seen, then divided once, as Keras'
    ``BinaryIoU`` does, but the threshold's comparison is explicit (``>=`` by default).

    Args:
        kind: ``iou`` or ``dice``.
        from_logits: Whether predictions are logits.
        threshold: The probability at which a pixel is foreground.
        comparison: ``>=`` or ``>``.
        name: The metric's name; defaults to ``kind``.
    """

    def __init__(
        self,
        kind: str,
        *,
        from_logits: bool = True,
        threshold: float = 0.5,
        comparison: masks.Comparison = ">=",
        name: str | None = None,
    ) -> None:
        if kind not in ("iou", "dice"):
            raise ValueError(f"kind received {kind!r}; expected iou or dice.")
        super().__init__(name=name or kind)
        self.kind = kind
        self.from_logits = from_logits
        self.threshold = threshold
        self.comparison = comparison
        self.intersection = self.add_variable(shape=(), initializer="zeros", name="intersection", aggregation="sum")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total", aggregation="sum")

    def update_state(self, y_true: tf.Tensor, y_pred: tf.Tensor, sample_weight: tf.Tensor | None = None) -> None:
        """Adds the images' intersections and sizes (weighted: padding with weight 0 counts for nothing)."""
        predicted = masks.binary(
            y_pred, threshold=self.threshold, from_logits=self.from_logits, comparison=self.comparison, dtype=tf.float32
        )
        truth = masks.binary(tf.reshape(tf.cast(y_true, tf.float32), tf.shape(predicted)), dtype=tf.float32)
        weights = tf.ones([tf.shape(predicted)[0]]) if sample_weight is None else tf.cast(sample_weight, tf.float32)
        intersection = _per_image_mean(predicted * truth)
        if self.kind == "iou":
            total = _per_image_mean(tf.maximum(predicted, truth))  # the union
        else:
            total = _per_image_mean(predicted + truth) / 2.0  # half the summed sizes: Dice = I / (that)
        self.intersection.assign_add(tf.reduce_sum(intersection * weights))
        self.total.assign_add(tf.reduce_sum(total * weights))

    def result(self) -> tf.Tensor:
        """The overlap; 1.0 when both masks are empty everywhere."""
        return tf.math.divide_no_nan(self.intersection, self.total) + tf.cast(tf.equal(self.total, 0.0), tf.float32)

    def get_config(self) -> dict:
        """Returns the constructor arguments."""
        return {
            "kind": self.kind,
            "from_logits": self.from_logits,
            "threshold": self.threshold,
            "comparison": self.comparison,
            "name": self.name,
        }


class ImageMetric(keras.metrics.Mean):
    """A Keras metric over images with a declared range: ``mae``, ``mse``, ``rmse``, ``psnr`` or ``ssim``.

    Args:
        kind: Which measure.
        data_range: The range the model's inputs and outputs are in.
        report_range: The scale MAE, MSE and RMSE are reported on.
        name: The metric's name; defaults to ``kind``.
    """

    def __init__(self, kind: str, *, data_range: str, report_range: str = "0-255", name: str | None = None) -> None:
        if kind not in ("mae", "mse", "rmse", "psnr", "ssim"):
            raise ValueError(f"kind received {kind!r}; expected mae, mse, rmse, psnr or ssim.")
        super().__init__(name=name or kind)
        self.kind = kind
        self.data_range = data_range
        self.report_range = report_range

    def update_state(self, y_true: tf.Tensor, y_pred: tf.Tensor, sample_weight: tf.Tensor | None = None) -> None:
        """Adds one value per image."""
        if self.kind == "mae":
            values = absolute_error_per_image(
                y_true, y_pred, data_range=self.data_range, report_range=self.report_range
            )
        elif self.kind in ("mse", "rmse"):
            values = squared_error_per_image(y_true, y_pred, data_range=self.data_range, report_range=self.report_range)
        elif self.kind == "psnr":
            values = psnr_per_image(y_true, y_pred, data_range=self.data_range)
        else:
            values = ssim_per_image(y_true, y_pred, data_range=self.data_range)
        super().update_state(values, sample_weight=sample_weight)

    def result(self) -> tf.Tensor:
        """The mean over images; for RMSE, the root of the mean squared error."""
        mean = super().result()
        return tf.sqrt(mean) if self.kind == "rmse" else mean

    def get_config(self) -> dict:
        """Returns the constructor arguments."""
        return {"kind": self.kind, "data_range": self.data_range, "report_range": self.report_range, "name": self.name}
