"""TensorFlow image ops shared by extraction, training, export and inference.

Training and the exported model call the same functions, so a deployed model sees
exactly the pixels the new layer was trained on.
"""

from __future__ import annotations

import functools

import tensorflow as tf

_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


#: JPEGs of more pixels than this are decoded downscaled in the DCT (by 2, 4 or 8), to no
#: less than the network's input size: a 20000 x 20000 scan then takes 19 MB instead of
#: 1.2 GB, and decodes at all (TensorFlow's decoder fails on it at full size). Photos below
#: it decode exactly as label_image decodes them.
LARGE_JPEG_PIXELS = 4096 * 4096
JPEG_MAGIC = b"\xff\xd8\xff"


def decode_image(encoded: tf.Tensor, min_side: int | None = None) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP bytes to float32 RGB in [0, 255], shape [H, W, 3].

    Grayscale is expanded and alpha dropped (``channels=3``); 16-bit PNGs are scaled
    to 8 bits; a GIF gives its first frame. With ``min_side``, a JPEG over
    :data:`LARGE_JPEG_PIXELS` is decoded at 1/2, 1/4 or 1/8 scale, the smallest that keeps
    its short side at least ``min_side``.
    """

    def any_format() -> tf.Tensor:
        return tf.io.decode_image(encoded, channels=3, expand_animations=False, dtype=tf.uint8)

    if min_side is None:
        image = any_format()
    else:
        is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), JPEG_MAGIC)
        image = tf.cond(is_jpeg, lambda: _decode_jpeg_scaled(encoded, min_side), any_format)
    image.set_shape([None, None, 3])
    return tf.cast(image, tf.float32)


def _decode_jpeg_scaled(encoded: tf.Tensor, min_side: int) -> tf.Tensor:
    shape = tf.cast(tf.image.extract_jpeg_shape(encoded), tf.int64)
    large = shape[0] * shape[1] > LARGE_JPEG_PIXELS
    short = tf.minimum(shape[0], shape[1])

    def decode(ratio: int) -> tf.Tensor:
        return tf.io.decode_jpeg(encoded, channels=3, ratio=ratio)

    pairs = [(large & (short // r >= min_side), functools.partial(decode, r)) for r in (8, 4, 2)]
    return tf.case(pairs, default=functools.partial(decode, 1), exclusive=False)


#: How pixels are made from a file; part of every bottleneck cache key, so a change to
#: decoding or resizing can never mix old and new features.
PIXELS = "decode_image+jpeg_dct_scale_above_4096sq/resize_bilinear_tf1"


def resize(image: tf.Tensor, size: int | tf.Tensor) -> tf.Tensor:
    """Bilinear resize to a square exactly as retrain.py and ``label_image`` do.

    That is TF1's ``ResizeBilinear`` without half-pixel centres (TF2's ``tf.image.resize``
    samples half a pixel apart). Training, the SavedModel and the TFLite inputs all use
    it, so ``label_image`` on the frozen graph sees the very pixels the layer learned from.
    """
    batched = image if image.shape.rank == 4 else image[tf.newaxis]
    sizes = tf.stack([size, size]) if isinstance(size, tf.Tensor) else tf.constant([size, size])
    out = tf.raw_ops.ResizeBilinear(images=batched, size=sizes, align_corners=False, half_pixel_centers=False)
    return out if image.shape.rank == 4 else out[0]


def preprocess(images: tf.Tensor, mode: str) -> tf.Tensor:
    """Scale float pixels in [0, 255] the way the backbone was trained."""
    if mode == "tf":
        return images / 127.5 - 1.0
    if mode == "unit":
        return images / 255.0
    if mode == "torch":
        return (images / 255.0 - _TORCH_MEAN) / _TORCH_STD
    if mode == "caffe":
        return images[..., ::-1] - _CAFFE_MEAN_BGR
    if mode == "none":
        return images
    raise ValueError(f"unknown preprocessing {mode!r}")


def load_resized(path: tf.Tensor, size: int) -> tf.Tensor:
    """Read, decode and resize one file: [size, size, 3] float32 in [0, 255]."""
    return resize(decode_image(tf.io.read_file(path), size), size)


def distort(
    image: tf.Tensor,
    size: int,
    *,
    flip_left_right: bool,
    random_crop: float,
    random_scale: float,
    random_brightness: float,
    seed: tf.Tensor,
) -> tf.Tensor:
    """retrain.py's distortions on one decoded image (percentages like its flags)."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    margin = 1.0 + random_crop / 100.0
    scale = tf.random.stateless_uniform([], seeds[0], 1.0, 1.0 + random_scale / 100.0)
    precrop = tf.cast(tf.math.ceil(size * margin * scale), tf.int32)
    image = resize(image, precrop)
    image = tf.image.stateless_random_crop(image, [size, size, 3], seeds[1])
    if flip_left_right:
        image = tf.image.stateless_random_flip_left_right(image, seeds[2])
    low, high = 1.0 - random_brightness / 100.0, 1.0 + random_brightness / 100.0
    image = image * tf.random.stateless_uniform([], seeds[3], low, high)
    return tf.clip_by_value(image, 0.0, 255.0)
