"""Bias correction before int8 conversion: its rounding is the converter's, and it helps."""

import numpy as np
import pytest
import tensorflow as tf

from harness.deploy.quantize import _layers, bias_corrected_copy, round_per_channel
from harness.deploy.tflite import load_pixels
from harness.pipeline import tfops
from harness.pipeline.backbone import load_backbone
from harness.registry import get_backbone


def _conv_bn_model(seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(6, 3, use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="conv_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, use_bias=False, name="dw")(x)
    x = keras.layers.BatchNormalization(name="dw_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    rng = np.random.default_rng(seed)
    for bn in ("conv_bn", "dw_bn"):
        layer = model.get_layer(bn)
        n = layer.gamma.shape[0]
        layer.set_weights(
            [rng.uniform(0.2, 3, n), rng.normal(0, 1, n), rng.normal(0, 1, n), rng.uniform(0.01, 4, n)]
        )
    return model


def _int8_kernels(model, calibration):
    """The converter's dequantized conv and depthwise kernels, in Keras layout."""

    @tf.function(input_signature=[tf.TensorSpec([1, 12, 12, 3], tf.float32)])
    def call(x):
        return model(x, training=False)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([call.get_concrete_function()])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([c[np.newaxis]] for c in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    kernels = {}
    for detail in interpreter.get_tensor_details():
        scales = detail["quantization_parameters"]["scales"]
        if detail["dtype"] == np.int8 and len(detail["shape"]) == 4 and len(scales) > 1:
            values = interpreter.get_tensor(detail["index"]).astype(np.float64)
            if detail["shape"][0] == 1:  # depthwise [1, kh, kw, C] -> [kh, kw, C, 1]
                kernels["dw"] = (values * scales)[0][..., np.newaxis]
            else:  # conv [out, kh, kw, in] -> [kh, kw, in, out]
                kernels["conv"] = (values * scales[:, None, None, None]).transpose(1, 2, 3, 0)
    return kernels


def test_rounded_kernels_survive_the_converter_unchanged():
    """The converter folds batch norm into the kernel and rounds it per channel; a kernel
    rounded by round_per_channel first comes out exactly as rounded, times the fold."""
    model = _conv_bn_model(3)
    calibration = np.random.default_rng(0).uniform(-1, 1, (8, 12, 12, 3)).astype(np.float32)
    folds = {}
    for name, depthwise in (("conv", False), ("dw", True)):
        layer, bn = model.get_layer(name), model.get_layer(f"{name}_bn")
        gamma, _, _, var = bn.get_weights()
        fold = gamma / np.sqrt(var + bn.epsilon)
        folds[name] = fold[:, np.newaxis] if depthwise else fold
        raw = layer.get_weights()[0]
        assert not np.allclose(round_per_channel(raw, depthwise), raw)  # rounding does something
        layer.set_weights([round_per_channel(raw, depthwise)])
    kernels = _int8_kernels(model, calibration)
    for name in ("conv", "dw"):
        expected = model.get_layer(name).get_weights()[0] * folds[name]
        np.testing.assert_allclose(kernels[name], expected, rtol=1e-5, atol=1e-7)


def test_round_per_channel_uses_one_scale_per_output_channel():
    kernel = np.zeros((1, 1, 2, 2), np.float32)
    kernel[0, 0, :, 0] = [1.0, 0.003]  # channel 0: the small weight rounds to 0 (step 1/127)
    kernel[0, 0, :, 1] = [0.01, 0.003]  # channel 1: its own, finer step
    rounded = round_per_channel(kernel, depthwise=False)
    assert rounded[0, 0, 1, 0] == 0.0
    assert rounded[0, 0, 1, 1] == pytest.approx(0.003, rel=0.01)
    assert np.all(round_per_channel(np.zeros((3, 3, 4, 1), np.float32), depthwise=True) == 0)


@pytest.mark.slow
def test_bias_correction_brings_rounded_mobilenet_features_back(small_flowers, keras_home):
    """On real MobileNet v1 weights and photos, rounding alone moves the features; the
    correction, estimated on other photos, brings them back, and the original is untouched."""
    import keras

    spec = get_backbone("mobilenet_v1_025")
    backbone = load_backbone(spec, "imagenet")
    photos = sorted(small_flowers.glob("*/*.jpg"))
    pixels = load_pixels(photos, spec.input_size)
    inputs = tfops.preprocess(tf.constant(pixels), spec.preprocessing).numpy()
    calibration, held_out = inputs[::2], inputs[1::2]
    before = [w.copy() for w in backbone.model.get_weights()]
    reference = backbone.model.predict(held_out, verbose=0)

    corrected, info = bias_corrected_copy(backbone.model, calibration)
    assert info.rounded == info.corrected == 27  # every conv of MobileNet v1 feeds a batch norm
    rounded = keras.models.clone_model(backbone.model)
    rounded.set_weights(backbone.model.get_weights())
    for layer in _layers(rounded):
        weights = layer.get_weights()
        weights[0] = round_per_channel(weights[0], isinstance(layer, keras.layers.DepthwiseConv2D))
        layer.set_weights(weights)

    def cosine(model) -> float:
        out = model.predict(held_out, verbose=0)
        norms = np.linalg.norm(out, axis=1) * np.linalg.norm(reference, axis=1)
        return float(np.mean(np.sum(out * reference, 1) / norms))

    assert cosine(rounded) < 0.99  # what the converter alone would do
    assert cosine(corrected) > 0.995
    assert 1 - cosine(corrected) < (1 - cosine(rounded)) / 4
    for a, b in zip(before, backbone.model.get_weights()):
        np.testing.assert_array_equal(a, b)
