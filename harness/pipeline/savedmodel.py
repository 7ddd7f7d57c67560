"""Export backbone + new layer as one SavedModel, with labels and metadata.

Signatures:
    ``serving_default``: ``images`` (string ``[N]``, encoded JPEG/PNG/GIF/BMP bytes)
        to ``probabilities`` ``[N, classes]``.
    ``classify_pixels``: ``pixels`` (float32 ``[N, S, S, 3]`` in [0, 255], already
        resized) to ``probabilities``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tensorflow as tf

from harness.atomic import json_text
from harness.pipeline import tfops
from harness.pipeline.backbone import Backbone, features_of
from harness.pipeline.train import Head

LABELS_FILE = "labels.txt"
METADATA_FILE = "harness.json"


def labels_bytes(classes: list[str]) -> bytes:
    """labels.txt (and retrain.py's output_labels.txt): one label per line, in output order."""
    return "".join(f"{c}\n" for c in classes).encode("utf-8")


class ExportedClassifier(tf.Module):
    """Decode, resize, preprocess, backbone and softmax layer in one graph."""

    def __init__(self, backbone: Backbone, head: Head) -> None:
        super().__init__()
        self.backbone = backbone.model
        self.size = backbone.spec.input_size
        self.preprocessing = backbone.spec.preprocessing
        self.weights = tf.Variable(head.weights, trainable=False, name="final_weights")
        self.bias = tf.Variable(head.bias, trainable=False, name="final_bias")
        size = self.size
        self.classify_pixels = tf.function(
            self._classify_pixels,
            input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="pixels")],
        )
        self.classify_images = tf.function(
            self._classify_images,
            input_signature=[tf.TensorSpec([None], tf.string, name="images")],
        )

    def probabilities(self, pixels: tf.Tensor) -> tf.Tensor:
        """Resized pixels in [0, 255] -> class probabilities (also what TFLite converts)."""
        features = features_of(self.backbone, pixels, self.preprocessing)
        return tf.nn.softmax(tf.matmul(features, self.weights) + self.bias)

    def _classify_pixels(self, pixels: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"probabilities": self.probabilities(pixels)}

    def _classify_images(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        pixels = tf.map_fn(
            lambda data: tfops.resize(tfops.decode_image(data, self.size), self.size),
            images,
            fn_output_signature=tf.TensorSpec([self.size, self.size, 3], tf.float32),
        )
        return self._classify_pixels(pixels)


def write_saved_model(
    backbone: Backbone,
    head: Head,
    classes: list[str],
    folder: str | os.PathLike[str],
    metadata: dict[str, Any],
) -> None:
    """Write the SavedModel, ``labels.txt`` and ``harness.json`` into ``folder``.

    ``folder`` is a staging folder (see :func:`harness.outputs.replacing_model_folder`):
    what a user sees at the model's path is swapped in whole, never written in place.
    """
    out = Path(folder)
    module = ExportedClassifier(backbone, head)
    tf.saved_model.save(
        module,
        str(out),
        signatures={
            "serving_default": module.classify_images,
            "classify_pixels": module.classify_pixels,
        },
    )
    (out / LABELS_FILE).write_bytes(labels_bytes(classes))
    meta = dict(metadata, classes=classes, input_size=backbone.spec.input_size)
    (out / METADATA_FILE).write_text(json_text(meta), encoding="utf-8")
