"""Build a backbone and wrap it as a fast feature function."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from harness.errors import HarnessError
from harness.pipeline import tfops
from harness.registry import BackboneSpec, FeatureModel


@dataclass
class Backbone:
    """A built backbone: the model and a compiled function from pixels to features."""

    spec: BackboneSpec
    model: FeatureModel
    feature_size: int
    params: int
    build_seconds: float
    weights_source: str  # "random", "keras-cache", the weights file used, or the spec's family
    features: Any  # tf.function: float pixels [N, S, S, 3] in [0, 255] -> [N, feature_size]
    weights_note: str | None = None  # e.g. that the weights file is not the published one
    #: What extraction and timing call: pixels -> NumPy features; TensorFlow's function by
    #: default, the LiteRT interpreter with ``--runtime litert`` (see harness.pipeline.litert).
    extract: Any = None
    runtime: str = "tf"

    def __post_init__(self) -> None:
        if self.extract is None:
            self.extract = lambda pixels: self.features(pixels).numpy()


def features_of(model: FeatureModel, pixels: tf.Tensor, preprocessing: str) -> tf.Tensor:
    """Pixels in [0, 255] -> flat features ``[N, D]``: preprocess, run, flatten.

    Extraction, distorted training batches, the SavedModel and TFLite exports all call
    this one function, so a deployed model computes exactly what the layer trained on.
    """
    out = model(tfops.preprocess(pixels, preprocessing), training=False)
    return tf.reshape(out, [tf.shape(pixels)[0], -1])


def resolve_weights(
    spec: BackboneSpec, weights: str, weights_dir: str | os.PathLike[str] | None
) -> tuple[str, str, str | None]:
    """What ``spec.builder`` gets for ``weights``: ``"random"``, a resolved weights file, or
    ``"imagenet"`` for a backbone that loads its own. Cheap when the file is on disk.

    Returns:
        ``(builder_argument, source, note)``; ``note`` is a line for the user or None.

    Raises:
        WeightsMissingError: the pretrained weights cannot be had (one line naming the file).
    """
    if weights == "random":
        return "random", "random", None
    if spec.weights is None:
        return weights, spec.family, None
    found = spec.weights.resolve(weights_dir)
    return str(found.path), found.source, found.note


def check_weights(
    specs: list[BackboneSpec], weights: str, weights_dir: str | os.PathLike[str] | None
) -> dict[str, str]:
    """Resolve every backbone's pretrained weights before any image is read.

    Downloads missing files where the plugin can (online); returns, by backbone name, the
    one-line error of each whose weights cannot be had, so a run can record it and go on.
    """
    errors: dict[str, str] = {}
    for spec in specs:
        try:
            resolve_weights(spec, weights, weights_dir)
        except HarnessError as exc:
            errors[spec.name] = str(exc)
    return errors


def check_device(device: str) -> str:
    """The TensorFlow device for ``--device``; an error if a GPU is asked for and absent."""
    if device == "cpu":
        return "/CPU:0"
    if device == "gpu":
        if not tf.config.list_physical_devices("GPU"):
            raise HarnessError("--device gpu: TensorFlow sees no GPU on this machine")
        return "/GPU:0"
    raise HarnessError(f"unknown device {device!r} (cpu or gpu)")


def load_backbone(
    spec: BackboneSpec, weights: str, weights_dir: str | os.PathLike[str] | None = None
) -> Backbone:
    """Build ``spec`` and trace its feature function.

    Args:
        spec: The backbone.
        weights: ``"imagenet"`` or ``"random"`` (speed measurements only).
        weights_dir: A folder of weight files tried before the plugin's own cache.

    Raises:
        WeightsMissingError: ImageNet weights are neither on disk nor downloadable.
    """
    start = time.perf_counter()
    builder_weights, source, note = resolve_weights(spec, weights, weights_dir)
    model = spec.builder(spec, builder_weights)
    if not isinstance(model, FeatureModel):
        raise HarnessError(
            f"backbone {spec.name}: its builder returned {type(model).__name__}, which is not "
            "callable with count_params() (see harness.registry.FeatureModel)"
        )
    size = spec.input_size

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)], reduce_retracing=True)
    def features(pixels: tf.Tensor) -> tf.Tensor:
        return features_of(model, pixels, spec.preprocessing)

    probe = features(tf.zeros([1, size, size, 3]))  # traces once; tells the true feature size
    return Backbone(
        spec=spec,
        model=model,
        feature_size=int(probe.shape[-1]),
        params=int(model.count_params()),
        build_seconds=time.perf_counter() - start,
        weights_source=source,
        features=features,
        weights_note=note,
    )
