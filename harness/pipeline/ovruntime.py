"""Bottlenecks on OpenVINO (CPU): the same converted feature model LiteRT runs, compiled by
OpenVINO, in fp32 or, where the CPU has the instructions, bf16.

OpenVINO's own default on a CPU with BF16 is bf16: harness always sets the precision hint,
so reduced precision is never chosen silently. Optional: ``pip install 'harness[deploy]'``.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from harness.plan import Precision
from harness.quiet import quiet_native

_HINTS = {Precision.FP32: "f32", Precision.BF16: "bf16"}


class OpenVINOFeatures:
    """Pixels ``[N, S, S, 3]`` in [0, 255] -> features ``[N, D]``, NumPy in and out."""

    def __init__(
        self, model: bytes, precision: Precision = Precision.FP32, num_threads: int | None = None
    ) -> None:
        import openvino as ov

        self.num_threads = num_threads or os.cpu_count() or 1
        self.precision = precision
        core = ov.Core()
        # OpenVINO reads a .tflite from a file only.
        with tempfile.NamedTemporaryFile(suffix=".tflite") as fh:
            fh.write(model)
            fh.flush()
            with quiet_native():
                network = core.read_model(fh.name)
        shape = list(network.inputs[0].get_partial_shape())
        network.reshape({network.inputs[0]: ov.PartialShape([-1, *shape[1:]])})
        config = {
            "INFERENCE_PRECISION_HINT": _HINTS[precision],
            "INFERENCE_NUM_THREADS": self.num_threads,
            "PERFORMANCE_HINT": "LATENCY",  # one request at a time: the loop feeds batches in order
        }
        self.compiled = core.compile_model(network, "CPU", config)
        self.request = self.compiled.create_infer_request()

    def close(self) -> None:
        """Let the compiled model and its threads go (they would compete with what is timed next)."""
        self.request = None
        self.compiled = None

    def __call__(self, pixels: Any) -> np.ndarray:
        batch = np.ascontiguousarray(pixels, dtype=np.float32)
        out = self.request.infer({0: batch})
        return np.asarray(next(iter(out.values()))).reshape(len(batch), -1).copy()
