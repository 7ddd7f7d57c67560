"""TFLite export of backbone + new layer, float or quantized, and its interpreter.

The TFLite model takes resized float pixels ``[1, S, S, 3]`` in [0, 255] (TFLite has
no image decoders) and returns class probabilities; preprocessing is inside it.
Decoding and resizing for it use the same :mod:`harness.pipeline.tfops` functions as training.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from harness.atomic import atomic_write
from harness.errors import HarnessError, first_line
from harness.pipeline import tfops
from harness.quiet import quiet_native
from harness.schema import QUANTIZATIONS


def tflite_file_name(quantize: str) -> str:
    return "model.tflite" if quantize == "none" else f"model_{quantize}.tflite"


def convert(
    classifier: Any,
    size: int,
    quantize: str,
    representative: Iterable[np.ndarray] | None = None,
) -> bytes:
    """Convert an :class:`harness.pipeline.savedmodel.ExportedClassifier` to TFLite bytes.

    Args:
        classifier: The exported module (its ``probabilities`` is converted).
        size: Input side in pixels.
        quantize: ``none``, ``float16`` (weights), ``dynamic`` (int8 weights, float
            activations) or ``int8`` (weights and activations, calibrated on
            ``representative`` pixel arrays ``[S, S, 3]``; float input and output).
        representative: Training images for int8 calibration.
    """
    if quantize not in QUANTIZATIONS:
        raise HarnessError(f"unknown quantization {quantize!r}: one of {', '.join(QUANTIZATIONS)}")
    function = tf.function(
        lambda pixels: classifier.probabilities(pixels),
        input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="pixels")],
    )
    concrete = function.get_concrete_function()
    # No trackable object: the converter then freezes every variable into a constant,
    # which int8 calibration needs (it cannot run READ_VARIABLE).
    with quiet_native():  # absl's notice that this path is deprecated
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        if representative is None:
            raise HarnessError("int8 quantization needs representative training images")
        samples = list(representative)
        if not samples:
            raise HarnessError("int8 quantization needs at least one representative image")

        def dataset() -> Iterable[list[np.ndarray]]:
            for pixels in samples:
                yield [pixels[np.newaxis].astype(np.float32)]

        converter.representative_dataset = dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        with quiet_native():  # absl's trackable_obj notice
            return converter.convert()
    except Exception as exc:
        raise HarnessError(f"TFLite conversion ({quantize}) failed: {first_line(exc)}") from exc


class TFLiteModel:
    """A TFLite classifier with batch-1 invocation, as on a device."""

    def __init__(self, path: str | os.PathLike[str], num_threads: int | None = None) -> None:
        self.path = Path(path)
        self.num_threads = num_threads or os.cpu_count() or 1
        from ai_edge_litert.interpreter import Interpreter  # tf.lite.Interpreter is deprecated

        with quiet_native():  # XNNPACK's line
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=self.num_threads)
            self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self.size = int(self._input["shape"][1])

    def invoke(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities for one image ``[S, S, 3]`` float in [0, 255]."""
        self.interpreter.set_tensor(self._input["index"], pixels[np.newaxis].astype(np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"])[0].copy()

    def predict_pixels(self, batch: np.ndarray) -> np.ndarray:
        return np.stack([self.invoke(p) for p in batch]) if len(batch) else np.zeros((0, 0), np.float32)

    def predict_encoded(self, encoded: list[bytes]) -> np.ndarray:
        return np.stack([self.invoke(decode_resize(data, self.size)) for data in encoded])


def decode_resize(encoded: bytes, size: int) -> np.ndarray:
    return tfops.resize(tfops.decode_image(tf.constant(encoded), size), size).numpy()


def load_pixels(paths: Iterable[str | os.PathLike[str]], size: int) -> np.ndarray:
    """Decoded, resized pixels of image files, ``[N, S, S, 3]`` float32 (N may be 0)."""
    pixels = [tfops.load_resized(tf.constant(os.fsencode(p)), size).numpy() for p in paths]
    return np.stack(pixels) if pixels else np.zeros((0, size, size, 3), np.float32)


# Quantizations whose int8 kernels get bias correction (see harness.deploy.quantize).
BIAS_CORRECTED = ("dynamic", "int8")


@dataclass
class TFLiteVariant:
    """One TFLite file written beside the SavedModel, and how it did on the test images."""

    quantize: str
    path: Path
    size_mb: float
    bias_corrected_layers: int
    threads: int
    test_accuracy: float | None = None
    agreement: float | None = None  # share of test images with the float model's top-1
    predictions: list[int] = field(default_factory=list)


def export_tflite(
    backbone: Any,
    head: Any,
    output_dir: Path,
    quantizations: Iterable[str],
    *,
    representative: np.ndarray,
    test_pixels: np.ndarray,
    test_labels: np.ndarray,
    classes: list[str],
    reference: np.ndarray | None = None,
    optional: Iterable[str] = (),
    warn: Callable[[str], None] = print,
) -> list[TFLiteVariant]:
    """Write each TFLite variant and evaluate it on the test images with the interpreter.

    Args:
        backbone: The :class:`harness.pipeline.backbone.Backbone`.
        head: The trained :class:`harness.pipeline.train.Head`.
        output_dir: Where the ``.tflite`` files go (the SavedModel's folder).
        quantizations: Variants to write, from :data:`harness.schema.QUANTIZATIONS`.
        representative: Training pixels ``[N, S, S, 3]`` for int8 calibration and bias
            correction.
        test_pixels: Test pixels, run through the TFLite interpreter.
        test_labels: Their class indices.
        classes: Class names.
        reference: The float model's top-1 class per test image; each variant's
            ``agreement`` is the fraction of test images where its top-1 is the same,
            a finer measure of what quantization changed than accuracy.
        optional: Variants only deployment targets need: one that does not convert is a
            ``warn`` line and is left out (its targets say why), not an error.
    """
    from harness.pipeline.evaluate import evaluate
    from harness.pipeline.savedmodel import ExportedClassifier

    size = backbone.spec.input_size
    plain = ExportedClassifier(backbone, head)
    corrected: tuple[Any, int] | None = None
    out = []
    for quantize in quantizations:
        classifier, corrected_layers = plain, 0
        try:
            if quantize in BIAS_CORRECTED:
                if corrected is None:
                    corrected = _bias_corrected(backbone, head, representative)
                classifier, corrected_layers = corrected
            data = convert(classifier, size, quantize, representative)
        except HarnessError as exc:
            if quantize not in optional:
                raise
            warn(f"warning: {exc}; the targets that run it are skipped")
            continue
        path = output_dir / tflite_file_name(quantize)
        atomic_write(path, data)
        model = TFLiteModel(path)
        variant = TFLiteVariant(quantize, path, len(data) / 1e6, corrected_layers, model.num_threads)
        if len(test_labels):
            evaluation = evaluate(model.predict_pixels(test_pixels), test_labels, classes)
            variant.test_accuracy = evaluation.accuracy
            variant.predictions = evaluation.predictions
            if reference is not None and len(reference):
                variant.agreement = float(
                    np.mean(np.asarray(evaluation.predictions) == np.asarray(reference))
                )
        out.append(variant)
    return out


def _bias_corrected(backbone: Any, head: Any, representative: np.ndarray) -> tuple[Any, int]:
    """An exported classifier on a bias-corrected copy of a Keras backbone."""
    import dataclasses

    import keras

    from harness.deploy.quantize import bias_corrected_copy
    from harness.pipeline.savedmodel import ExportedClassifier

    if not isinstance(backbone.model, keras.Model) or not len(representative):
        return ExportedClassifier(backbone, head), 0
    inputs = tfops.preprocess(tf.constant(representative, tf.float32), backbone.spec.preprocessing)
    model, correction = bias_corrected_copy(backbone.model, inputs.numpy())
    return ExportedClassifier(dataclasses.replace(backbone, model=model), head), correction.corrected
