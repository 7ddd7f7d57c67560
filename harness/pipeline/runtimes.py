"""Which runtime extracts a backbone's bottlenecks, decided per backbone on this machine.

With one candidate (``--runtime litert``, ``openvino``, ``tf``, or a GPU) it is used. With
``auto`` on a CPU, every installed CPU runtime whose features agree with TensorFlow's is
timed on a short probe (the backbone alone, at the extraction batch size), and the fastest
extracts. The measured rates are kept in the cache folder, keyed by this CPU, the
backbone, the precision, the batch size and the runtimes' versions, so the next run on
the same machine decides at once.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import atomic_write
from harness.pipeline.backbone import Backbone
from harness.pipeline.cacheroot import CacheRoot
from harness.pipeline.litert import FLOAT, Conversion
from harness.plan import Precision, Runtime, Weights

#: How long each candidate is timed, after one warm-up call.
PROBE_SECONDS = 0.5

Log = Callable[[str], None]


def on_runtime(
    backbone: Backbone,
    runtime: Runtime,
    precision: Precision,
    weights: Weights,
    cache_dir: str | os.PathLike[str] | None,
    log: Log,
    conversion: Conversion = FLOAT,
) -> Backbone:
    """``backbone`` extracting on ``runtime`` at ``precision`` (unchanged on TensorFlow; a
    runtime that cannot run it falls back to TensorFlow with a notice). ``conversion``
    makes the model LiteRT runs (int8 is calibrated on training photos by the caller)."""
    if runtime is Runtime.LITERT:
        from harness.pipeline.litert import with_litert

        return with_litert(backbone, weights, cache_dir, log, precision, conversion)
    if runtime is Runtime.OPENVINO:  # the same converted model, compiled by OpenVINO
        from harness.pipeline.litert import min_cosine, on_converted
        from harness.pipeline.ovruntime import OpenVINOFeatures

        return on_converted(
            backbone,
            weights,
            cache_dir,
            log,
            runtime=runtime,
            precision=precision,
            open_model=lambda model: OpenVINOFeatures(model, precision),
            min_cosine=min_cosine(precision),
        )
    return backbone


def rate(backbone: Backbone, batch_size: int, seconds: float = PROBE_SECONDS) -> float:
    """Images per second of ``backbone.extract`` alone on random pixels, after a warm-up."""
    size = backbone.spec.input_size
    pixels = np.random.default_rng(0).uniform(0, 255, (batch_size, size, size, 3)).astype(np.float32)
    backbone.extract(pixels)
    done, start = 0, time.perf_counter()
    while done < 3 * batch_size or time.perf_counter() - start < seconds:
        backbone.extract(pixels)
        done += batch_size
    return done / (time.perf_counter() - start)


def _versions() -> dict[str, str]:
    import tensorflow as tf

    out = {"tf": tf.__version__}
    try:
        import openvino

        out["openvino"] = openvino.__version__
    except ImportError:
        pass
    return out


def _probe_key(spec: Any, weights: Weights, precision: Precision, batch_size: int) -> dict[str, Any]:
    from harness.cpu import cpu_features

    cpu = cpu_features()
    return {
        "cpu": cpu.model,
        "cores": cpu.cores,
        "isa": cpu.isa,
        "backbone": CacheRoot.bottleneck_identity(spec, weights),
        "precision": precision.value,
        "batch": batch_size,
        "versions": _versions(),
    }


def choose_runtime(
    backbone: Backbone,
    candidates: tuple[Runtime, ...],
    precision: Precision,
    weights: Weights,
    cache_dir: str | os.PathLike[str] | None,
    batch_size: int,
    log: Log,
    conversion: Conversion = FLOAT,
) -> tuple[Backbone, dict[str, float]]:
    """The backbone on the fastest of ``candidates`` that can run it, and the measured rates
    (img/s by runtime; empty when there was nothing to choose)."""
    name = backbone.spec.name
    if len(candidates) == 1:
        return on_runtime(backbone, candidates[0], precision, weights, cache_dir, log, conversion), {}
    store = CacheRoot(cache_dir).runtime_probe_file(name) if cache_dir else None
    key = _probe_key(backbone.spec, weights, precision, batch_size)
    rates = _stored_rates(store, key)
    measured = not rates
    built: dict[str, Backbone] = {}
    if measured:
        for runtime in candidates:
            on = on_runtime(backbone, runtime, precision, weights, cache_dir, log)
            if on.runtime is runtime:
                rates[runtime.value] = rate(on, batch_size)
                built[runtime.value] = on
        if store is not None and rates:
            atomic_write(store, json.dumps({"key": key, "rates": rates}).encode(), what="runtime probe")
    if not rates:
        log(f"{name}: notice: no CPU runtime can run this backbone; extracting with TensorFlow")
        return backbone, {}
    best = Runtime(max(rates, key=lambda r: rates[r]))
    how = "measured now" if measured else "measured before on this CPU"
    ranking = ", ".join(f"{r} {v:,.0f} img/s" for r, v in sorted(rates.items(), key=lambda kv: -kv[1]))
    log(f"{name}: runtime auto: {best} ({ranking}; the backbone alone, {how})")
    for runtime, other in built.items():  # the others' threads would compete with extraction
        if runtime != best.value and hasattr(other.extract, "close"):
            other.extract.close()
    if best.value in built:
        return built[best.value], rates
    return on_runtime(backbone, best, precision, weights, cache_dir, log), rates


def decided_runtime(
    spec: Any,
    candidates: tuple[Runtime, ...],
    precision: Precision,
    weights: Weights,
    cache_dir: str | os.PathLike[str],
    batch_size: int,
) -> Runtime | None:
    """The runtime :func:`choose_runtime` would pick, when that needs no backbone: the only
    candidate, or the fastest in the rates stored on this machine; None when it needs a probe."""
    if len(candidates) == 1:
        return candidates[0]
    store = CacheRoot(cache_dir).runtime_probe_file(spec.name)
    rates = _stored_rates(store, _probe_key(spec, weights, precision, batch_size))
    return Runtime(max(rates, key=lambda r: rates[r])) if rates else None


def _stored_rates(store: os.PathLike[str] | None, key: dict[str, Any]) -> dict[str, float]:
    if store is None:
        return {}
    try:
        data = json.loads(Path(store).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("key") != key or not isinstance(data.get("rates"), dict):
        return {}
    return {str(k): float(v) for k, v in data["rates"].items()}
