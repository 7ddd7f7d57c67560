"""Bias-corrected int8 weights for a Keras backbone before TFLite quantization.

The TFLite converter quantizes each convolution kernel per output channel to int8
(symmetric, ``scale = max|w| / 127``). The rounding error of a kernel shifts the mean of
its output channel whenever the layer's input has a non-zero mean, which is always the
case after a ReLU. In MobileNet v1 that shift, compounded over 27 layers, takes the
features to a cosine of 0.975 to the float ones and costs several points of accuracy.

*Empirical bias correction* (Nagel et al., "Data-Free Quantization Through Weight
Equalization and Bias Correction", ICCV 2019, section 4.2; Banner et al., 2019) rounds
the kernels the way the converter will, measures each layer's expected error on
calibration images, ``E[conv(x; W_q - W)]`` per channel, and subtracts it from the
layer's bias (or adds it to the moving mean of the batch normalization that follows,
which the converter folds into the bias). The converter then re-quantizes the already
rounded kernels to the same integers, so the correction survives conversion.

This works on any functional Keras model; layers it does not understand are left as
they are (the converter quantizes them as usual).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class Correction:
    """What :func:`bias_corrected_copy` did: layers rounded and layers corrected."""

    rounded: int
    corrected: int


def round_per_channel(kernel: np.ndarray, depthwise: bool) -> np.ndarray:
    """Round a kernel to symmetric int8 per output channel, as TFLite does, in float.

    Conv2D kernels are ``[kh, kw, in, out]`` (channels on the last axis); depthwise
    kernels are ``[kh, kw, in, multiplier]``, one channel per ``(in, multiplier)`` pair.
    """
    axes = (0, 1) if depthwise else tuple(range(kernel.ndim - 1))
    scale = np.abs(kernel).max(axis=axes, keepdims=True) / 127.0
    scale = np.where(scale == 0, 1.0, scale)
    return (np.clip(np.round(kernel / scale), -127, 127) * scale).astype(kernel.dtype)


def _layers(model: Any) -> list[Any]:
    import keras

    chosen = []
    for layer in model.layers:
        # Exactly Conv2D: its subclasses (transposed, separable) lay kernels out differently.
        plain_conv = type(layer) is keras.layers.Conv2D and layer.groups == 1
        if not (plain_conv or isinstance(layer, keras.layers.DepthwiseConv2D)):
            continue
        if layer.data_format != "channels_last" or len(layer._inbound_nodes) != 1:
            continue
        chosen.append(layer)
    return chosen


def _consumers(model: Any) -> dict[int, list[Any]]:
    """Layers that read each layer's output, keyed by the producing layer's id."""
    out: dict[int, list[Any]] = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                history = getattr(tensor, "_keras_history", None)
                if history is not None:
                    out.setdefault(id(history.operation), []).append(layer)
    return out


def _error(layer: Any, inputs: tf.Tensor, delta: np.ndarray, depthwise: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-channel sum over batch and positions of the layer's output error, and their count."""
    strides = [1, *layer.strides, 1]
    padding = layer.padding.upper()
    if depthwise:
        out = tf.nn.depthwise_conv2d(
            inputs, delta, strides=strides, padding=padding, dilations=layer.dilation_rate
        )
    else:
        out = tf.nn.conv2d(inputs, delta, strides=strides, padding=padding, dilations=layer.dilation_rate)
    shape = tf.shape(out)
    return tf.reduce_sum(out, axis=[0, 1, 2]), shape[0] * shape[1] * shape[2]


def bias_corrected_copy(model: Any, calibration: np.ndarray, batch_size: int = 16) -> tuple[Any, Correction]:
    """A copy of ``model`` with int8-rounded, bias-corrected convolution kernels.

    Args:
        model: A functional Keras model (the backbone).
        calibration: Model inputs ``[N, ...]`` (already preprocessed) to estimate the
            mean input of every layer from; training images, never test images.
        batch_size: Images per forward pass while estimating.

    Returns:
        The corrected copy (``model`` is not modified) and what was done.
    """
    import keras

    layers = _layers(model)
    if not layers or len(calibration) == 0:
        return model, Correction(0, 0)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    by_name = {layer.name: layer for layer in copy.layers}
    consumers = _consumers(copy)

    probe = keras.Model(model.inputs, [layer.input for layer in layers])
    deltas, depthwise = [], []
    for layer in layers:
        kernel = layer.get_weights()[0]
        is_depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        deltas.append(round_per_channel(kernel, is_depthwise) - kernel)
        depthwise.append(is_depthwise)

    # One trace per model whatever the batch (a last short batch would trace again, and TF
    # warns on the console about repeated tracing over a run of several backbones).
    @tf.function(input_signature=[tf.TensorSpec([None, *np.shape(calibration)[1:]], tf.float32)])
    def errors(batch: tf.Tensor) -> list[tuple[tf.Tensor, tf.Tensor]]:
        inputs = probe(batch, training=False)
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        return [_error(layer, x, delta, dw) for layer, x, delta, dw in zip(layers, inputs, deltas, depthwise)]

    sums = [np.zeros(d.shape[2] * d.shape[3] if dw else d.shape[-1]) for d, dw in zip(deltas, depthwise)]
    counts = [0] * len(layers)
    for start in range(0, len(calibration), batch_size):
        batch = tf.constant(calibration[start : start + batch_size], tf.float32)
        for i, (total, count) in enumerate(errors(batch)):
            sums[i] += total.numpy()
            counts[i] += int(count)

    corrected = 0
    for layer, delta, total, count in zip(layers, deltas, sums, counts):
        target = by_name[layer.name]
        mean_error = (total / count).astype(np.float32)
        weights = target.get_weights()
        weights[0] = weights[0] + delta
        readers = consumers.get(id(target), [])
        if len(readers) == 1 and isinstance(readers[0], keras.layers.BatchNormalization):
            target.set_weights(weights)
            bn = readers[0]
            if bn.axis in (-1, 3):
                bn.moving_mean.assign(bn.moving_mean.numpy() + mean_error)
                corrected += 1
        elif target.use_bias:
            weights[1] = weights[1] - mean_error
            target.set_weights(weights)
            corrected += 1
        else:
            target.set_weights(weights)
    return copy, Correction(rounded=len(layers), corrected=corrected)
