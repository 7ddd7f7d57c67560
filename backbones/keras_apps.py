"""Shared builder for backbones from ``keras.applications``."""

from __future__ import annotations

from typing import Any

from harness.errors import WeightsMissingError
from harness.registry import BackboneSpec, keras_home, weights_available


def build_keras_application(spec: BackboneSpec, weights: str) -> Any:
    """Build ``keras.applications.<constructor>`` without its top, average pooled.

    With ``weights="imagenet"`` Keras looks for ``spec.weights_file`` in
    ``$KERAS_HOME/models/`` and downloads it when missing; offline, that fails and we
    say which file to put where.
    """
    import keras

    options = dict(spec.options)
    keras_weights = {"imagenet": "imagenet", "random": None}.get(weights, weights)
    constructor = getattr(keras.applications, options.pop("constructor"))
    had_file = weights_available(spec)
    if weights == "random":
        # Random weights are for timing only; seed them so reruns build the same model.
        keras.utils.set_random_seed(0)
    try:
        return constructor(
            include_top=False,
            pooling="avg",
            weights=keras_weights,
            input_shape=(spec.input_size, spec.input_size, 3),
            **options,
        )
    except Exception as exc:
        if weights == "imagenet" and not had_file and not weights_available(spec):
            target = keras_home() / "models" / spec.weights_file
            raise WeightsMissingError(
                f"ImageNet weights for {spec.name} are not available offline: put "
                f"{spec.weights_file} in {target.parent}/ (from {spec.weights_url}), "
                f"pass --weights-dir DIR holding it, or use --weights random for speed only"
            ) from exc
        raise
