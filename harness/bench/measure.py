"""Speed of what the pipeline produced: the exported SavedModel and the TFLite variants."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.bench.timing import time_calls
from harness.workflow import Log, Retrained


def saved_model_size_mb(path: Path) -> float:
    """The SavedModel's own files: TFLite files written beside it have their own column."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and f.suffix != ".tflite") / 1e6


def saved_model_latency(export_dir: Path, image_file: str, *, runs: int, device: str) -> dict[str, Any]:
    """Load the export and time its ``serving_default`` on one encoded image, batch 1.

    Returns:
        ``load_s`` and :func:`harness.bench.timing.time_calls`'s figures.
    """
    import tensorflow as tf

    from harness.pipeline.backbone import check_device

    start = time.perf_counter()
    loaded = tf.saved_model.load(str(export_dir))
    load_s = time.perf_counter() - start
    signature = loaded.signatures["serving_default"]
    sample = tf.constant([Path(image_file).read_bytes()])
    with tf.device(check_device(device)):
        latency = time_calls(lambda: signature(images=sample), runs=runs)
    return {"load_s": load_s, **latency}


def tflite_latency(result: Retrained, *, runs: int, log: Log) -> list[dict[str, Any]]:
    """Batch-1 latency of each TFLite variant on a decoded test image; logs one line each.

    Returns:
        Per variant: ``quantize``, ``latency_ms_p50``, ``latency_ms_p90``, ``threads``.
    """
    from harness.deploy.tflite import TFLiteModel, load_pixels

    size = result.spec.input_size
    tests = result.images["testing"] or result.images["training"]
    sample = load_pixels([tests[0].path], size)[0] if tests else np.zeros((size, size, 3), np.float32)
    out = []
    for v in result.tflite:
        model = TFLiteModel(v.path)
        latency = time_calls(lambda m=model: m.invoke(sample), runs=runs)
        out.append(
            {
                "quantize": v.quantize,
                "latency_ms_p50": latency["p50"],
                "latency_ms_p90": latency["p90"],
                "threads": model.num_threads,
            }
        )
        accuracy = "n/a" if v.test_accuracy is None else f"{v.test_accuracy * 100:.1f}%"
        if v.agreement is not None:
            accuracy += f" (same top-1 as float on {v.agreement * 100:.1f}% of test images)"
        log(
            f"{result.spec.name}: TFLite {v.quantize}: {v.size_mb:.2f} MB, test accuracy {accuracy}, "
            f"{latency['p50']:.1f} ms p50 at batch 1 ({model.num_threads} threads)"
            + (f", bias correction on {v.bias_corrected_layers} layers" if v.bias_corrected_layers else "")
        )
    return out
