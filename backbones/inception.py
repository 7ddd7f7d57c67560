"""Inception v3, the backbone of TensorFlow's original retrain.py tutorial."""

from __future__ import annotations

from backbones.keras_apps import KerasWeights, build_keras_application
from harness.registry import BackboneSpec

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


def specs() -> list[BackboneSpec]:
    return [
        BackboneSpec(
            name="inception_v3",
            family="inception_v3",
            builder=build_keras_application,
            input_size=299,
            feature_size=2048,
            preprocessing="tf",
            # Keras' MD5 of its own file; ../shared holds Google's 2015 network instead, which
            # loads by path with a notice (see backbones.keras_apps).
            weights=KerasWeights(_FILE, _BASE + _FILE, md5="bcbd6486424b2319ff4ef7d526e38f63"),
            params=21_802_784,
            options=(("constructor", "InceptionV3"),),
            description="Inception v3 (retrain.py default), 299 px",
        )
    ]
