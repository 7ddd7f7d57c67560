"""Build a backbone and wrap it as a fast feature function."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from harness.errors import HarnessError
from harness.pipeline import tfops
from harness.plan import Device, Precision, Runtime, Weights
from harness.registry import BackboneSpec, FeatureModel, ResolvedWeights


@dataclass
class Backbone:
    """A built backbone: the model and a compiled function from pixels to features."""

    spec: BackboneSpec
    model: FeatureModel
    feature_size: int
    params: int
    build_seconds: float
    weights_source: str  # random, keras-cache, the weights file used, or the spec's family
    features: Any  # tf.function: float pixels [N, S, S, 3] in [0, 255] -> [N, feature_size]
    weights_note: str | None = None  # e.g. that the weights file is not the published one
    #: What extraction and timing call: pixels -> NumPy features; TensorFlow's function by
    #: default, the LiteRT interpreter with ``--runtime litert`` (see harness.pipeline.litert).
    extract: Any = None
    runtime: Runtime = Runtime.TF
    precision: Precision = Precision.FP32  # of the runtime's arithmetic

    @property
    def runtime_text(self) -> str:
        """``litert``, or ``openvino (bf16)`` where the precision is reduced."""
        return str(self.runtime) if self.precision is Precision.FP32 else f"{self.runtime} ({self.precision})"

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
    spec: BackboneSpec, weights: Weights, weights_dir: str | os.PathLike[str] | None
) -> ResolvedWeights | None:
    """The weights file ``spec`` loads, found (or downloaded) once, before any image is read;
    None for random weights and for a backbone that loads its own.

    Raises:
        WeightsMissingError: the pretrained weights cannot be had (one line naming the file).
    """
    if not Weights.parse(weights).real or spec.weights is None:
        return None
    return spec.weights.resolve(weights_dir)


def _builder_weights(spec: BackboneSpec, weights: Weights, found: ResolvedWeights | None) -> tuple[str, str]:
    """What ``spec.builder`` gets (the plugin contract: random, the resolved file, or
    ``"imagenet"`` for a backbone that loads its own) and the source a row records."""
    if not weights.real:
        return weights.value, weights.value
    if found is None:
        return weights.value, spec.family
    return str(found.path), found.source


def require_device(device: Device) -> None:
    """An error, before any work, if the device asked for is not on this machine.

    Raises:
        HarnessError: a GPU is asked for and TensorFlow sees none.
    """
    if device is Device.GPU and not tf.config.list_physical_devices("GPU"):
        raise HarnessError("--device gpu: TensorFlow sees no GPU on this machine")


def load_backbone(
    spec: BackboneSpec,
    weights: Weights | str,
    weights_dir: str | os.PathLike[str] | None = None,
    *,
    resolved: ResolvedWeights | None = None,
) -> Backbone:
    """Build ``spec`` and trace its feature function.

    Args:
        spec: The backbone.
        weights: ImageNet, or random (speed measurements only).
        weights_dir: A folder of weight files tried before the plugin's own cache, when
            ``resolved`` is not given.
        resolved: The weights file the run plan found (:attr:`harness.plan.Target.weights`):
            used as it is, not looked for again.

    Raises:
        WeightsMissingError: ImageNet weights are neither on disk nor downloadable.
    """
    start = time.perf_counter()
    weights = Weights.parse(weights)
    found = resolved if resolved is not None else resolve_weights(spec, weights, weights_dir)
    builder_weights, source = _builder_weights(spec, weights, found)
    note = found.note if found is not None else None
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
