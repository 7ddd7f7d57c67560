"""Speed of what the pipeline produced: the exported SavedModel and the TFLite variants."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from harness.bench.timing import time_calls
from harness.plan import Device, PipelineOptions
from harness.schema import TFLITE_FIELDS
from harness.workflow import Log, Retrained


def saved_model_size_mb(path: Path) -> float:
    """The SavedModel's own files: TFLite files written beside it have their own column."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and f.suffix != ".tflite") / 1e6


def saved_model_latency(export_dir: Path, image_file: str, *, runs: int, device: Device) -> dict[str, Any]:
    """Load the export and time its ``serving_default`` on one encoded image, batch 1.

    Returns:
        ``load_s`` and :func:`harness.bench.timing.time_calls`'s figures.
    """
    import tensorflow as tf

    start = time.perf_counter()
    loaded = tf.saved_model.load(str(export_dir))
    load_s = time.perf_counter() - start
    signature = loaded.signatures["serving_default"]
    sample = tf.constant([Path(image_file).read_bytes()])
    with tf.device(device.tf_name):
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


def accuracy_values(result: Retrained, real: bool) -> dict[str, Any]:
    """Validation and test accuracy with its interval; none from random weights, where
    accuracy means nothing and is not recorded as a result."""
    ev = result.evaluation
    validation = result.metadata.get("validation_accuracy")
    calibration = result.metadata.get("calibration") or {}
    return {
        "validation_accuracy": validation if real else None,
        "test_accuracy": ev.accuracy if real else None,
        "test_accuracy_ci_low": ev.ci95[0] if real else None,
        "test_accuracy_ci_high": ev.ci95[1] if real else None,
        "test_ece": calibration.get("ece") if real else None,
        "test_ece_scaled": calibration.get("ece_scaled") if real else None,
        "temperature": calibration.get("temperature") if real else None,
        "test_balanced_accuracy": balanced_accuracy(ev.per_class) if real else None,
    }


def balanced_accuracy(per_class: list[dict[str, Any]]) -> float | None:
    """Mean recall over the classes with test photos: a majority class cannot carry it."""
    recalls = [c["recall"] for c in per_class if c.get("support")]
    return float(np.mean(recalls)) if recalls else None


def measure_exports(
    result: Retrained, sample_file: str, options: PipelineOptions, runs: int, log: Log
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """The exported SavedModel's size and batch-1 latency, and each TFLite variant's figures.

    Returns:
        Row values, one detail record per TFLite variant, and the SavedModel's latency.
    """
    real = options.weights.real
    latency: dict[str, Any] = {}
    if result.export_dir is not None:
        # The exported model's own latency, batch 1, as a user would call it.
        latency = saved_model_latency(result.export_dir, sample_file, runs=runs, device=options.device)
    tflite_times = {t["quantize"]: t for t in tflite_latency(result, runs=runs, log=log)}
    values: dict[str, Any] = {
        "model_size_mb": saved_model_size_mb(result.export_dir) if result.export_dir else None,
        "export_s": result.export_seconds,
        "model_load_s": latency.get("load_s"),
        "latency_ms_first": latency.get("first_ms"),
        "latency_ms_p50": latency.get("p50"),
        "latency_ms_p90": latency.get("p90"),
    }
    tflite_details = []
    for variant in result.tflite:
        measured = {**asdict(variant), **tflite_times[variant.quantize], "path": str(variant.path)}
        for name in TFLITE_FIELDS:
            meaningless = not real and name in ("test_accuracy", "agreement")
            values[f"tflite_{variant.quantize}_{name}"] = None if meaningless else measured[name]
        values["tflite_threads"] = measured["threads"]
        tflite_details.append({k: v for k, v in measured.items() if k != "predictions" or real})
    return values, tflite_details, latency
