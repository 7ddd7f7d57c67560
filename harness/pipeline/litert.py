"""Bottlenecks on LiteRT: the backbone's feature function as float TFLite, run by the
interpreter (XNNPACK) on every core, while tf.data decodes the next batch.

Files to features ran 1.4-3.2x faster than on TensorFlow on a 2-core CPU (docs/speed.md
has the side-by-side figures), with features equal to within a cosine of 1e-5. The
converted file is kept beside the bottleneck cache, keyed by everything that changes it,
so a backbone is converted once. A backbone that does not convert, or whose converted
features disagree with TensorFlow's on a probe, falls back to TensorFlow with a one-line
notice saying why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from harness.atomic import atomic_write
from harness.errors import HarnessError, first_line
from harness.pipeline.backbone import Backbone
from harness.pipeline.cacheroot import CacheRoot
from harness.plan import Precision, Runtime, Weights
from harness.quiet import quiet_native

#: A converted backbone must match TensorFlow's features on the probe at least this well.
PROBE_COSINE = 0.9999


def convert_features(backbone: Backbone) -> bytes:
    """Float TFLite bytes of ``backbone.features`` (pixels ``[N, S, S, 3]`` -> features)."""
    concrete = backbone.features.get_concrete_function()
    # No trackable object: every variable is frozen into a constant, as for the exports;
    # absl's notice that this path is deprecated is not the user's business.
    with quiet_native():
        return tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert()


class LiteRTFeatures:
    """Pixels ``[N, S, S, 3]`` in [0, 255] -> features ``[N, D]``, NumPy in and out."""

    def __init__(self, model: bytes, num_threads: int | None = None) -> None:
        self.num_threads = num_threads or os.cpu_count() or 1
        from ai_edge_litert.interpreter import Interpreter  # tf.lite.Interpreter is deprecated

        with quiet_native():  # XNNPACK's line
            self.interpreter = Interpreter(model_content=model, num_threads=self.num_threads)
        self._input = self.interpreter.get_input_details()[0]["index"]
        self._output = self.interpreter.get_output_details()[0]["index"]
        self._batch = -1

    def close(self) -> None:
        """Let the interpreter and its thread pool go (they would compete with what is
        timed next)."""
        self.interpreter = None

    def __call__(self, pixels: Any) -> np.ndarray:
        batch = np.ascontiguousarray(pixels, dtype=np.float32)
        if len(batch) != self._batch:  # the interpreter is resized only when the batch changes
            with quiet_native():  # XNNPACK announces itself on allocation
                self.interpreter.resize_tensor_input(self._input, batch.shape)
                self.interpreter.allocate_tensors()
            self._batch = len(batch)
        self.interpreter.set_tensor(self._input, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output).reshape(len(batch), -1).copy()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two feature matrices."""
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


@dataclasses.dataclass(frozen=True)
class Conversion:
    """How a backbone becomes the model a CPU runtime runs: float by default; ``key`` tells
    other conversions apart in the cache (int8 calibrated on given photos)."""

    convert: Callable[[Backbone], bytes]
    key: str = ""


FLOAT = Conversion(lambda backbone: convert_features(backbone))


def with_litert(
    backbone: Backbone,
    weights: str,
    cache_dir: str | os.PathLike[str] | None,
    log: Any,
    precision: Precision = Precision.FP32,
    conversion: Conversion = FLOAT,
) -> Backbone:
    """``backbone`` extracting on LiteRT, or unchanged (with a notice) if that cannot be.

    Random weights are converted afresh every time (each build draws new ones).
    """
    return on_converted(
        backbone,
        weights,
        cache_dir,
        log,
        runtime=Runtime.LITERT,
        open_model=LiteRTFeatures,
        precision=precision,
        min_cosine=min_cosine(precision),
        conversion=conversion,
    )


def min_cosine(precision: Precision) -> float:
    """How close a converted backbone's features must come to TensorFlow's on the probe:
    fp32 to a hair; reduced precision is a sanity bound, since a run with it measures
    what it costs in accuracy (McNemar against the fp32 features' layer)."""
    return {Precision.FP32: PROBE_COSINE, Precision.BF16: 0.98, Precision.INT8: 0.9}[precision]


def on_converted(
    backbone: Backbone,
    weights: str,
    cache_dir: str | os.PathLike[str] | None,
    log: Any,
    *,
    runtime: Runtime,
    open_model: Callable[[bytes], Any],
    precision: Precision = Precision.FP32,
    min_cosine: float = PROBE_COSINE,
    conversion: Conversion = FLOAT,
) -> Backbone:
    """``backbone`` extracting with its converted feature model opened by ``open_model``
    (the LiteRT interpreter, OpenVINO), or unchanged, with a notice, if that cannot be.

    The converted file is kept in the cache (one per backbone and weights file, whatever
    runs it); a cached file that fails is converted again once. Before use, the features
    are checked against TensorFlow's on a probe batch: at least ``min_cosine``.
    """
    name = backbone.spec.name
    real = Weights.parse(weights).real
    path = (
        CacheRoot(cache_dir).converted_backbone(
            backbone.spec, weights, backbone.weights_source, conversion.key
        )
        if cache_dir and real
        else None
    )
    cached = _read_converted(path) if path is not None else None

    def probed(model: bytes) -> Backbone:
        return _probed(backbone, open_model(model), runtime, precision, min_cosine)

    try:
        if precision is Precision.INT8 and not conversion.key:
            raise HarnessError("int8 needs the backbone calibrated on training photos, not the float model")
        if cached is not None:
            try:
                return probed(cached)
            except Exception as exc:  # a damaged or stale file: converted again, once
                log(
                    f"{name}: notice: the converted backbone in the cache failed "
                    f"({first_line(exc)}); converting again"
                )
        model = conversion.convert(backbone)
        if path is not None:
            atomic_write(path, model, what="converted backbone")
            atomic_write(
                _digest_file(path), hashlib.sha256(model).hexdigest().encode(), what="converted backbone"
            )
        return probed(model)
    except Exception as exc:
        reason = first_line(exc)
        log(
            f"{name}: notice: {runtime.label} cannot run this backbone ({reason}); extracting with TensorFlow"
        )
        return backbone


def _digest_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _read_converted(path: Path) -> bytes | None:
    """The cached converted backbone if it is whole (its SHA-256 as written), else None:
    a truncated flatbuffer can crash the interpreter, so it is never handed one."""
    try:
        model = path.read_bytes()
        expected = _digest_file(path).read_text().strip()
    except OSError:
        return None
    return model if hashlib.sha256(model).hexdigest() == expected else None


def _probed(
    backbone: Backbone, extract: Any, runtime: Runtime, precision: Precision, min_cosine: float
) -> Backbone:
    """``backbone`` extracting with ``extract``, if its features match TensorFlow's on a probe.

    Raises:
        HarnessError: they differ.
    """
    size = backbone.spec.input_size
    probe = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    ours, theirs = extract(probe), backbone.features(probe).numpy()
    worst = float(cosines(ours, theirs).min()) if ours.shape == theirs.shape else float("nan")
    if not worst >= min_cosine:
        raise HarnessError(f"its features differ from TensorFlow's (cosine {worst:.6f})")
    return dataclasses.replace(backbone, extract=extract, runtime=runtime, precision=precision)
