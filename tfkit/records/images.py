"""JPEG and PNG through Pillow: an image's shape from its header, and its pixels for ``inspect``.

Pillow's plugins read the whole header, however long (a JPEG's EXIF and ICC segments can pass 64 KB before its
frame header), and ``Image.open`` decodes no pixels. Training decodes images with TensorFlow (tfkit.data).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from tfkit.errors import UserError

_FORMATS = ("JPEG", "PNG")
# Pillow's modes by the channels tf.io.decode_image gives. A palette image decodes to RGB, as TensorFlow's does.
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def image_shape(path: str) -> tuple[int, int, int]:
    """(height, width, channels) of a JPEG or PNG file, from its header alone.

    Raises:
        UserError: The file is not a readable JPEG or PNG.
    """
    try:
        with warnings.catch_warnings():
            # Pillow warns of "decompression bombs" by pixel count; reading a header decodes nothing.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=_FORMATS) as image:
                width, height = image.size
                mode = image.mode
    except Image.DecompressionBombError as error:
        raise UserError(f"image '{path}' is too large to decode ({error}); expected a smaller image.") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise UserError(
            f"image '{path}' is not a readable JPEG or PNG ({error}); expected a valid file. Remove or re-save it."
        ) from None
    channels = 3 if mode in ("P", "PA") else Image.getmodebands(mode)
    return height, width, channels


def decode_image(data: bytes, *, channels: int) -> np.ndarray:
    """The pixels of an encoded JPEG or PNG as a ``(height, width, channels)`` uint8 array.

    Raises:
        UserError: The bytes are not a readable JPEG or PNG.
    """
    try:
        with Image.open(io.BytesIO(data), formats=_FORMATS) as image:
            pixels = np.asarray(image.convert(_MODES[channels]), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as error:
        raise UserError(f"a stored image is not a readable JPEG or PNG ({error}); expected one.") from None
    return pixels.reshape(*pixels.shape[:2], channels)
