"""Extraction at this machine's limit: every runtime and precision side by side.

Used by ``benchmarks/throughput.py --runtimes``. For each backbone, in one process, on the
same real photos, rounds alternating between methods (this VM's speed drifts by 20-40%
over minutes, so ratios are taken within each round and printed as median and range):

- model only: the converted backbone on decoded, resized photos held in memory, at
  harness' batch size, on TensorFlow, LiteRT and OpenVINO in fp32, and OpenVINO in bf16
  where the CPU has it;
- decode: read + decode + resize with tf.data, nothing else running;
- pipeline limit of a runtime: 1 / (1/model + 1/decode), decoding and the model sharing the
  CPU's cores; the fastest runtime's is the limit harness is held to;
- harness: photo files on disk to features in an empty cache, on the runtime
  ``--runtime auto`` picks (fp32), and on OpenVINO bf16;
- achieved GFLOPS of each model-only rate against the CPU's nominal peak for its precision.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any


def model_gflop(backbone: Any) -> float:
    """Floating-point operations of one image through the feature function, in GFLOP."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from harness.pipeline.backbone import features_of

    size = backbone.spec.input_size
    fixed = tf.function(lambda x: features_of(backbone.model, x, backbone.spec.preprocessing))
    frozen = convert_variables_to_constants_v2(fixed.get_concrete_function(tf.TensorSpec([1, size, size, 3])))
    from harness.quiet import quiet_native

    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    with quiet_native():  # the v1 profiler's deprecation notices
        profile = tf.compat.v1.profiler.profile(graph=frozen.graph, options=options)
    return profile.total_float_ops / 1e9


def measure_runtimes(name: str, images: list, weights_dir: Any, batch_size: int, repeats: int) -> dict:
    """One backbone's row: model-only rates per runtime and precision, decode, limits, harness."""
    import tensorflow as tf

    from harness.cpu import cpu_features
    from harness.pipeline import tfops
    from harness.pipeline.backbone import load_backbone
    from harness.pipeline.cacheroot import CacheRoot
    from harness.pipeline.extract import extract_features
    from harness.pipeline.runtimes import choose_runtime, on_runtime
    from harness.plan import Device, Precision, Runtime, Weights, openvino_installed
    from harness.registry import get_backbone

    paths = [str(i.path) for i in images]
    n = len(paths)
    spec = get_backbone(name)
    weights = Weights.IMAGENET if spec.weights_on_disk(weights_dir) else Weights.RANDOM
    on_tf = load_backbone(spec, weights, weights_dir)
    runtimes = {"tf fp32": on_tf}
    with tempfile.TemporaryDirectory() as cache_dir:
        runtimes["litert fp32"] = on_runtime(on_tf, Runtime.LITERT, Precision.FP32, weights, cache_dir, print)
        if openvino_installed():
            for precision in (Precision.FP32, Precision.BF16):
                if precision.value in cpu_features().precisions:
                    built = on_runtime(on_tf, Runtime.OPENVINO, precision, weights, cache_dir, print)
                    runtimes[f"openvino {precision}"] = built
        auto, probed = choose_runtime(
            on_tf,
            Runtime.AUTO.candidates(Device.CPU, Precision.FP32),
            Precision.FP32,
            weights,
            cache_dir,
            batch_size,
            print,
        )
    size = spec.input_size
    pixels = tf.stack([tfops.load_resized(tf.constant(p), size) for p in paths[:batch_size]]).numpy()

    def model(backbone: Any) -> Callable[[], float]:
        def measure() -> float:
            calls = max(1, n // batch_size)
            start = time.perf_counter()
            for _ in range(calls):
                backbone.extract(pixels)
            return calls * batch_size / (time.perf_counter() - start)

        return measure

    def load(path: tf.Tensor) -> tf.Tensor:
        return tfops.load_resized(path, size)

    def decode() -> float:
        ds = tf.data.Dataset.from_tensor_slices(paths).map(load, num_parallel_calls=tf.data.AUTOTUNE)
        start = time.perf_counter()
        count = sum(int(b.shape[0]) for b in ds.batch(batch_size).prefetch(tf.data.AUTOTUNE))
        return count / (time.perf_counter() - start)

    def harness(backbone: Any) -> Callable[[], float]:
        def measure() -> float:
            with tempfile.TemporaryDirectory() as cache_dir:
                cache = CacheRoot(cache_dir).bottleneck_cache(spec.name, "bench", backbone.feature_size)
                result = extract_features(backbone, images, cache, batch_size=batch_size)
                return result.computed / result.seconds

        return measure

    # A runtime that could not run the backbone fell back to TensorFlow (a notice said why).
    ran = {k: v for k, v in runtimes.items() if f"{v.runtime} {v.precision}" == k}
    methods = {f"model {k}": model(v) for k, v in ran.items()}
    methods["decode"] = decode
    methods[f"harness {auto.runtime_text}"] = harness(auto)
    if "openvino bf16" in ran:
        methods["harness openvino (bf16)"] = harness(ran["openvino bf16"])
    for method in methods.values():
        method()  # warm every path once, unmeasured
    samples: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(repeats):
        for key, method in methods.items():
            samples[key].append(method())

    def limit(model_rate: float, decode_rate: float) -> float:
        return 1 / (1 / model_rate + 1 / decode_rate)

    fp32 = [k for k in methods if k.startswith("model") and k.endswith("fp32")]
    ratios = []
    bf16_ratios = []
    for r in range(repeats):
        fastest = max(samples[k][r] for k in fp32)
        ratios.append(samples[f"harness {auto.runtime_text}"][r] / limit(fastest, samples["decode"][r]))
        if "harness openvino (bf16)" in samples:
            bf16_ratios.append(
                samples["harness openvino (bf16)"][r]
                / limit(samples["model openvino bf16"][r], samples["decode"][r])
            )
    med = {k: statistics.median(v) for k, v in samples.items()}
    gflop = model_gflop(on_tf)
    row: dict[str, Any] = {"backbone": name, "weights": str(weights), "GFLOP/img": gflop}
    for key in [k for k in methods if k.startswith("model")]:
        row[f"{key} img/s"] = med[key]
        row[f"{key} GFLOPS"] = med[key] * gflop
    row["decode img/s"] = med["decode"]
    row["auto picks"] = (
        f"{auto.runtime_text} (probe: {', '.join(f'{k} {v:,.0f}' for k, v in probed.items())})"
    )
    row["harness img/s"] = med[f"harness {auto.runtime_text}"]
    row["harness / fastest fp32 limit"] = statistics.median(ratios)
    row["(range)"] = f"{min(ratios):.2f}-{max(ratios):.2f}"
    if bf16_ratios:
        row["harness bf16 img/s"] = med["harness openvino (bf16)"]
        row["harness bf16 / bf16 limit"] = statistics.median(bf16_ratios)
        row["(bf16 range)"] = f"{min(bf16_ratios):.2f}-{max(bf16_ratios):.2f}"
    for backbone in (*runtimes.values(), auto):
        if hasattr(backbone.extract, "close"):
            backbone.extract.close()
    return row


def header() -> str:
    """The CPU and its nominal peaks, stated beside every figure (it can change between sessions)."""
    from harness.cpu import cpu_features

    cpu = cpu_features()
    peaks = ", ".join(
        f"{p} {cpu.peak_gflops(p):,.0f} GFLOPS" for p in cpu.precisions if cpu.peak_gflops(p) is not None
    )
    return (
        f"CPU: {cpu.line()}\nnominal peak on {cpu.cores} cores at the clock /proc/cpuinfo reports "
        f"(boost clocks exceed it): {peaks or 'unknown clock'}"
    )
