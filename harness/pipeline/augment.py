"""Training batches of freshly distorted images (retrain.py's distortion flags).

Distorted images differ on every step, so their bottlenecks cannot be cached: each
training batch runs through the whole backbone. That is slow, and the run says so.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from harness.pipeline import tfops
from harness.pipeline.backbone import Backbone
from harness.pipeline.images import ImageFile
from harness.pipeline.train import BatchSampler
from harness.plan import Augmentation


def distorted_file(path: tf.Tensor, size: int, augmentation: Augmentation, seed: tf.Tensor) -> tf.Tensor:
    """Read, decode and distort one training file as retrain.py's flags say (``[size, size, 3]``)."""
    image = tfops.decode_image(tf.io.read_file(path), size)
    return tfops.distort(
        image,
        size,
        flip_left_right=augmentation.flip_left_right,
        random_crop=augmentation.random_crop,
        random_scale=augmentation.random_scale,
        random_brightness=augmentation.random_brightness,
        seed=seed,
    )


def distorted_sampler(
    backbone: Backbone, images: list[ImageFile], labels: np.ndarray, augmentation: Augmentation
) -> BatchSampler:
    """A sampler drawing random training images, distorting them and featurising them."""
    paths = tf.constant([os.fsencode(img.file) for img in images])
    size = backbone.spec.input_size
    aug = augmentation

    @tf.function
    def pixels_for(indices: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        def one(args: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
            index, seed = args
            return distorted_file(tf.gather(paths, index), size, aug, seed)

        return tf.map_fn(
            one, (indices, seeds), fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32)
        )

    def sample(rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        idx = rng.integers(0, len(images), batch_size)
        seeds = rng.integers(0, 2**31 - 1, (batch_size, 2))
        pixels = pixels_for(tf.constant(idx, tf.int32), tf.constant(seeds, tf.int64))
        return backbone.features(pixels).numpy(), labels[idx]

    return sample
