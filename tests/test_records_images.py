"""JPEG and PNG through Pillow: shapes from headers however long, and pixels as TensorFlow decodes them."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfkit.errors import UserError
from tfkit.records import images


def encoded(mode: str, kind: str, size=(7, 5)) -> bytes:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    out = io.BytesIO()
    image.save(out, format=kind)
    return out.getvalue()


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        *(("L", "PNG"), ("LA", "PNG"), ("RGB", "PNG"), ("RGBA", "PNG"), ("P", "PNG"), ("I;16", "PNG"), ("1", "PNG")),
        *(("L", "JPEG"), ("RGB", "JPEG")),
    ],
)
def test_the_shape_from_the_header_is_the_shape_tensorflow_decodes(tmp_path, mode, kind):
    path = tmp_path / f"image.{kind.lower()}"
    path.write_bytes(encoded(mode, kind))
    expected = tf.io.decode_image(path.read_bytes(), expand_animations=False).shape
    assert images.image_shape(str(path)) == tuple(expected)


def test_a_file_that_is_no_image_is_one_user_error(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_bytes(b"hello" * 100)
    with pytest.raises(UserError, match=r"image '.*notes\.jpg' is not a readable JPEG or PNG"):
        images.image_shape(str(path))


@pytest.mark.parametrize(
    ("mode", "kind", "channels", "tolerance"),
    [
        ("RGB", "PNG", 3, 0),
        ("L", "PNG", 1, 0),
        ("L", "PNG", 3, 0),
        ("RGBA", "PNG", 4, 0),
        ("RGBA", "PNG", 3, 0),
        # Below, the libraries round a colour conversion or a JPEG's chroma upsampling differently, by a few levels:
        # inspect shows a sample, and training decodes with TensorFlow.
        ("RGB", "PNG", 1, 2),
        ("RGB", "JPEG", 3, 4),
        ("RGB", "JPEG", 1, 8),
    ],
)
def test_decoded_pixels_are_those_tensorflow_decodes(mode, kind, channels, tolerance):
    data = encoded(mode, kind, size=(16, 12))
    expected = tf.io.decode_image(data, channels=channels, expand_animations=False).numpy()
    decoded = images.decode_image(data, channels=channels)
    assert decoded.dtype == np.uint8 and decoded.shape == expected.shape == (12, 16, channels)
    assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= tolerance
