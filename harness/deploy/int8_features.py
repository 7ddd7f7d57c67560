"""The backbone's feature function in int8 (weights and activations) for ``--precision int8``.

The same calibrated quantization as the int8 export (:mod:`harness.deploy.tflite`): kernels
rounded per channel with empirical bias correction measured on training photos
(:mod:`harness.deploy.quantize`), activations calibrated on the same photos by the TFLite
converter; float pixels in, float features out. LiteRT runs it with XNNPACK's int8
kernels (VNNI dot products where the CPU has them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import tensorflow as tf

from harness.pipeline import tfops
from harness.pipeline.backbone import features_of
from harness.pipeline.litert import Conversion
from harness.quiet import quiet_native

#: Training photos the calibration reads, at most (as the int8 export does).
CALIBRATION_IMAGES = 100


def int8_conversion(calibration: np.ndarray) -> Conversion:
    """How ``--precision int8`` converts a backbone: calibrated on ``calibration`` pixels
    ``[N, S, S, 3]`` (training photos), keyed in the cache by their content."""
    key = "int8-" + hashlib.sha256(np.ascontiguousarray(calibration).tobytes()).hexdigest()[:12]
    return Conversion(lambda backbone: int8_feature_model(backbone, calibration), key)


def int8_feature_model(backbone: Any, calibration: np.ndarray) -> bytes:
    """int8 TFLite bytes of ``backbone``'s feature function, calibrated on ``calibration``."""
    import keras

    from harness.deploy.quantize import bias_corrected_copy

    model = backbone.model
    preprocessing = backbone.spec.preprocessing
    if isinstance(model, keras.Model) and len(calibration):
        inputs = tfops.preprocess(tf.constant(calibration, tf.float32), preprocessing)
        model, _ = bias_corrected_copy(model, inputs.numpy())
    size = backbone.spec.input_size
    function = tf.function(
        lambda pixels: features_of(model, pixels, preprocessing),
        input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="pixels")],
    )

    def representative() -> Iterable[list[np.ndarray]]:
        for pixels in calibration:
            yield [pixels[np.newaxis].astype(np.float32)]

    with quiet_native():
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()
