"""Timing done properly: warm-up excluded, repeated, summarised with median, p90 and spread."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.plan import DEFAULT_LATENCY_RUNS


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, p90, mean, min, max of ``samples``, and their spread relative to the median two
    ways: ``iqr_ratio`` (IQR / median) and ``range_ratio`` ((max - min) / median, what the
    ``*_spread`` columns report)."""
    if not len(samples):
        nan = float("nan")
        keys = ("median", "p90", "mean", "min", "max", "iqr_ratio", "range_ratio")
        return {"n": 0, **dict.fromkeys(keys, nan)}
    a = np.asarray(samples, dtype=float)
    median = float(np.median(a))
    q1, q3 = np.percentile(a, [25, 75])
    return {
        "n": int(a.size),
        "median": median,
        "p90": float(np.percentile(a, 90)),
        "mean": float(a.mean()),
        "min": float(a.min()),
        "max": float(a.max()),
        "iqr_ratio": float((q3 - q1) / median) if median else float("nan"),
        "range_ratio": float((a.max() - a.min()) / median) if median else float("nan"),
    }


def time_bottlenecks(
    backbone: Any,
    paths: Sequence[str],
    *,
    batch_size: int,
    repeats: int = 3,
    warmup_batches: int = 1,
) -> dict[str, Any]:
    """Throughput of the extraction pipeline (read, decode, resize, backbone) on real files.

    Each repeat streams ``paths`` through the same tf.data pipeline harness extracts
    with; the first ``warmup_batches`` batches of every repeat are excluded (pipeline
    fill, first-call allocation). No cache is involved.

    Returns:
        ``img_per_s`` (median over repeats) with ``img_per_s_p90`` (the slow tail: the
        10th percentile of per-repeat throughput), ``ms_per_img_p50``/``_p90`` over
        batches, ``spread`` and the raw samples.
    """
    from harness.pipeline.extract import image_dataset

    if len(paths) <= warmup_batches * batch_size:
        raise ValueError("not enough images to time after warm-up; lower the batch size")
    throughputs: list[float] = []
    batch_ms: list[float] = []
    for _ in range(repeats):
        counted = 0
        counted_seconds = 0.0
        last = time.perf_counter()
        for b, (pixels, _index) in enumerate(image_dataset(paths, backbone.spec.input_size, batch_size)):
            backbone.extract(pixels)
            now = time.perf_counter()
            if b >= warmup_batches:
                n = int(pixels.shape[0])
                counted += n
                counted_seconds += now - last
                batch_ms.append((now - last) * 1000 / n)
            last = now
        throughputs.append(counted / counted_seconds)
    stats = summarize(throughputs)
    per_image = summarize(batch_ms)
    return {
        "img_per_s": stats["median"],
        "img_per_s_p90": float(np.percentile(throughputs, 10)),
        "spread": stats["range_ratio"],
        "ms_per_img_p50": per_image["median"],
        "ms_per_img_p90": per_image["p90"],
        "batch_size": batch_size,
        "images": len(paths),
        "repeats": repeats,
        "samples_img_per_s": throughputs,
    }


def time_calls(
    call: Callable[[], Any], *, runs: int = DEFAULT_LATENCY_RUNS, warmup: int = 3
) -> dict[str, Any]:
    """Latency of ``call()`` in ms: first call reported apart, then p50/p90 of ``runs``."""
    start = time.perf_counter()
    call()
    first_ms = (time.perf_counter() - start) * 1000
    for _ in range(max(0, warmup - 1)):
        call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    stats = summarize(samples)
    return {"first_ms": first_ms, "p50": stats["median"], "p90": stats["p90"], "samples_ms": samples}
