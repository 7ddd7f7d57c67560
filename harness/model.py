"""Build a backbone and wrap it as a fast feature function."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tensorflow as tf

from harness import tfops
from harness.registry import BackboneSpec, weights_location


@dataclass
class Backbone:
    """A built backbone: the model and a compiled function from pixels to features."""

    spec: BackboneSpec
    weights: str
    model: Any
    feature_size: int
    params: int
    build_seconds: float
    weights_source: str  # "random", "keras-cache", "hub", or the weights file used
    features: Any  # tf.function: float pixels [N, S, S, 3] in [0, 255] -> [N, feature_size]


def load_backbone(
    spec: BackboneSpec, weights: str, weights_dir: str | os.PathLike[str] | None = None
) -> Backbone:
    """Build ``spec`` and trace its feature function.

    Args:
        spec: The backbone.
        weights: ``"imagenet"`` or ``"random"`` (speed measurements only).
        weights_dir: A folder of Keras weight files tried before the Keras cache.

    Raises:
        WeightsMissingError: ImageNet weights are neither on disk nor downloadable.
    """
    start = time.perf_counter()
    builder_weights, source = weights, weights
    if weights == "imagenet":
        location = weights_location(spec, weights_dir)
        if spec.weights_file is None:
            source = spec.family
        elif location is not None and weights_dir and location.parent == Path(weights_dir):
            builder_weights, source = str(location), str(location)
        else:
            source = "keras-cache"
    model = spec.builder(spec, builder_weights)
    size = spec.input_size

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)], reduce_retracing=True)
    def features(pixels: tf.Tensor) -> tf.Tensor:
        out = model(tfops.preprocess(pixels, spec.preprocessing), training=False)
        return tf.reshape(out, [tf.shape(pixels)[0], -1])

    probe = features(tf.zeros([1, size, size, 3]))  # traces once; tells the true feature size
    build_seconds = time.perf_counter() - start
    feature_size = int(probe.shape[-1])
    return Backbone(
        spec=spec,
        weights=weights,
        model=model,
        feature_size=feature_size,
        params=int(model.count_params()),
        build_seconds=build_seconds,
        weights_source=source,
        features=features,
    )
