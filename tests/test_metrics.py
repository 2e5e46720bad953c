"""tfkit.metrics: image errors on the declared scale, PSNR/SSIM against scikit-image, mask IoU and Dice."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from tfkit import metrics


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (3, 24, 24, 3)).astype(np.uint8)
    noisy = np.clip(clean.astype(np.int16) + rng.integers(-12, 13, clean.shape), 0, 255).astype(np.uint8)
    return clean, noisy


def test_errors_are_reported_on_the_declared_scale_whatever_the_inputs_range(images):
    clean, noisy = images
    diff = clean.astype(np.float64) - noisy.astype(np.float64)
    expected_mse, expected_mae = float(np.mean(diff**2)), float(np.mean(np.abs(diff)))
    unit = (clean / 255.0).astype(np.float32), (noisy / 255.0).astype(np.float32)
    signed = (clean / 127.5 - 1.0).astype(np.float32), (noisy / 127.5 - 1.0).astype(np.float32)
    for pair, data_range in (((clean, noisy), "0-255"), (unit, "0-1"), (signed, "-1-1")):
        assert float(metrics.mse(*pair, data_range=data_range)) == pytest.approx(expected_mse, rel=1e-4)
        assert float(metrics.mae(*pair, data_range=data_range)) == pytest.approx(expected_mae, rel=1e-4)
        assert float(metrics.rmse(*pair, data_range=data_range)) == pytest.approx(expected_mse**0.5, rel=1e-4)
    # The seed's numbers: the same error reads 255**2 times smaller on the 0-1 scale, and now it says so.
    on_unit = float(metrics.mse(*unit, data_range="0-1", report_range="0-1"))
    assert on_unit == pytest.approx(expected_mse / 255**2, rel=1e-4)


def test_psnr_and_ssim_match_scikit_image(images):
    clean, noisy = images
    expected_psnr = np.mean([peak_signal_noise_ratio(c, n, data_range=255) for c, n in zip(clean, noisy, strict=True)])
    expected_ssim = np.mean(
        [
            structural_similarity(
                c / 255.0,
                n / 255.0,
                data_range=1.0,
                channel_axis=-1,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            for c, n in zip(clean, noisy, strict=True)
        ]
    )
    assert float(metrics.psnr(clean, noisy, data_range="0-255")) == pytest.approx(expected_psnr, abs=1e-3)
    unit = (clean / 255.0).astype(np.float32), (noisy / 255.0).astype(np.float32)
    assert float(metrics.psnr(*unit, data_range="0-1")) == pytest.approx(expected_psnr, abs=1e-3)
    assert float(metrics.ssim(clean, noisy, data_range="0-255")) == pytest.approx(expected_ssim, abs=1e-3)


def test_values_outside_the_declared_range_are_an_error_eagerly_and_in_graphs(images):
    clean, noisy = images
    with pytest.raises(ValueError, match=r"outside the declared data_range 0-1 \(\[0, 1\]\).*span \[0, 255\]"):
        metrics.mse(clean, noisy, data_range="0-1")

    @tf.function
    def graph_mse(a, b):
        return metrics.mse(a, b, data_range="-1-1")

    with pytest.raises(tf.errors.InvalidArgumentError, match="outside the declared data_range -1-1"):
        graph_mse(tf.constant(clean, tf.float32), tf.constant(noisy, tf.float32))


def test_keras_metric_classes_average_over_every_image_they_see(images):
    clean, noisy = images
    rmse = metrics.ImageMetric("rmse", data_range="0-255")
    psnr = metrics.ImageMetric("psnr", data_range="0-255")
    for start in range(3):  # one image per update
        rmse.update_state(clean[start : start + 1], noisy[start : start + 1])
        psnr.update_state(clean[start : start + 1], noisy[start : start + 1])
    assert float(rmse.result()) == pytest.approx(float(metrics.rmse(clean, noisy, data_range="0-255")), rel=1e-5)
    assert float(psnr.result()) == pytest.approx(float(metrics.psnr(clean, noisy, data_range="0-255")), rel=1e-5)


def test_mask_iou_and_dice_match_numpy_and_ignore_padding():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (6, 8, 8, 1)).astype(np.float32)
    logits[0, 0, 0, 0] = 0.0  # exactly at the threshold: foreground with >=
    truth = (rng.random((6, 8, 8, 1)) < 0.4).astype(np.uint8)
    weights = np.array([1, 1, 1, 1, 0, 0], np.float32)  # two padding images
    predicted = logits >= 0.0
    kept = weights > 0
    intersection = np.logical_and(predicted, truth)[kept].sum()
    union = np.logical_or(predicted, truth)[kept].sum()
    sizes = predicted[kept].sum() + truth[kept].sum()
    for kind, expected in (("iou", intersection / union), ("dice", 2 * intersection / sizes)):
        metric = metrics.MaskOverlap(kind, from_logits=True)
        metric.update_state(truth[:3], logits[:3], sample_weight=weights[:3])
        metric.update_state(truth[3:], logits[3:], sample_weight=weights[3:])
        assert float(metric.result()) == pytest.approx(float(expected), rel=1e-6), kind
