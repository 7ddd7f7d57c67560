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


def bootstrap_medians(groups: Sequence[Sequence[float]], *, reps: int = 2000, seed: int = 0) -> np.ndarray:
    """Medians of ``reps`` bootstrap resamples of timing samples measured in ``groups``.

    Two stages: the groups (fresh processes, or timed passes) are resampled, then the
    samples within each chosen group; so the spread includes what differs from one process
    to the next (memory layout, clocks), not only call-to-call noise.
    """
    arrays = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not arrays:
        return np.full(reps, np.nan)
    rng = np.random.default_rng(seed)
    out = np.empty(reps)
    for r in range(reps):
        picked = rng.integers(len(arrays), size=len(arrays))
        out[r] = np.median(np.concatenate([rng.choice(arrays[i], size=arrays[i].size) for i in picked]))
    return out


def median_interval(groups: Sequence[Sequence[float]], level: float = 0.95) -> tuple[float, float]:
    """The ``level`` bootstrap interval of the median of grouped samples (see :func:`bootstrap_medians`)."""
    medians = bootstrap_medians(groups)
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(medians, [tail, 100 - tail]) if np.isfinite(medians).any() else (np.nan,) * 2
    return float(low), float(high)


def speedup_interval(
    groups_a: Sequence[Sequence[float]],
    groups_b: Sequence[Sequence[float]],
    *,
    higher_is_faster: bool,
    level: float = 0.95,
) -> tuple[float, float]:
    """The ``level`` interval of B's speed-up over A (above 1: B faster) from grouped samples.

    With at least three groups (processes, timed passes) on each side: Welch's t on the log of
    each group's median. The group, not the call, is the unit that varies from run to run,
    and with three of them the t quantile (4.3 at 2 degrees of freedom, against the normal
    1.96) is what keeps two identical runs from reading as different: a two-stage bootstrap
    of three processes gave 0.82-1.00 for two identical runs of one SavedModel here. With
    fewer groups on a side (two give one degree of freedom: an interval of no use), the
    two-stage bootstrap of both medians.
    """
    from scipy import stats

    a = np.log([np.median(g) for g in groups_a if len(g)])
    b = np.log([np.median(g) for g in groups_b if len(g)])
    sign = 1.0 if higher_is_faster else -1.0
    if a.size >= 3 and b.size >= 3:
        va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
        se = float(np.sqrt(va + vb))
        diff = sign * (b.mean() - a.mean())
        if se == 0:
            return float(np.exp(diff)), float(np.exp(diff))
        df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
        half = float(stats.t.ppf(0.5 + level / 2, df)) * se
        return float(np.exp(diff - half)), float(np.exp(diff + half))
    ma, mb = bootstrap_medians(groups_a, seed=1), bootstrap_medians(groups_b, seed=2)
    ratio = mb / ma if higher_is_faster else ma / mb
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(ratio, [tail, 100 - tail])
    return float(low), float(high)
