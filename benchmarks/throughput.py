"""Bottleneck throughput against its physical limits and the usual baselines.

    .venv/bin/python benchmarks/throughput.py --image-dir ../shared/data/flower_photos_subset \\
        --weights-dir ../shared/keras_home/models [--backbones mobilenet_v2_035,...] [--images 384]

Measured in one process on the same image files, repetitions alternating between methods
so that machine noise hits all of them alike (medians of --repeats):

- model limit: the backbone's feature function on a decoded, resized batch held in memory,
  at harness' batch size; the model alone at batch sizes 8, 16 and 32 is measured too, and
  the fastest is printed (on a CPU small batches run faster: activations stay in cache);
- decode limit: read + decode + resize with tf.data, in parallel, nothing else running;
- pipeline limit: both together. With the model on the CPU, decoding and the model share
  the cores, so 1 / (1/model + 1/decode); with the model on a GPU, min(model, decode);
- harness: JPEG files on disk to features in an empty bottleneck cache (harness' own path,
  at its default batch size for the device unless --batch-size is given);
- retrain.py style: one image at a time, read, decode, resize, run;
- Keras tutorial: keras.utils.image_dataset_from_directory + model.predict, at the
  tutorial's (and the function's default) batch size of 32.

The LiteRT ratios (harness on LiteRT against the pipeline limit with the fastest runtime,
and against harness on TensorFlow) are also taken within each repetition, from
measurements seconds apart, and printed as their median and range: this VM's speed
drifts by 20-40% over minutes, which a ratio of two medians does not cancel.
``--litert-only`` measures just what they need, so that many repetitions are affordable.

``--runtimes`` compares TensorFlow, LiteRT and OpenVINO (fp32, and bf16 where the CPU has
it) instead, against the limit of the fastest (benchmarks/runtime_limits.py).

Then the warm-cache re-run against the cold run, final-layer training (4000 steps of 100
on 1,500 cached 1024-dim vectors) against the cold extraction of 1,500 images, and the
start-up of `harness --help` / `harness backbones` (which must not import TensorFlow).
Everything is printed as one table of ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


KERAS_TUTORIAL_BATCH = 32


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def measure_backbone(name: str, images: list, args: argparse.Namespace, on_gpu: bool) -> dict:
    """All throughput figures of one backbone, medians over alternating repetitions."""
    import keras
    import tensorflow as tf

    from harness.pipeline import tfops
    from harness.pipeline.backbone import load_backbone
    from harness.pipeline.cacheroot import CacheRoot
    from harness.pipeline.extract import extract_features
    from harness.pipeline.litert import with_litert
    from harness.plan import Weights
    from harness.registry import get_backbone

    paths = [str(i.path) for i in images]
    n = len(paths)
    spec = get_backbone(name)
    weights = Weights.IMAGENET if spec.weights_on_disk(args.weights_dir) else Weights.RANDOM
    backbone = load_backbone(spec, weights, args.weights_dir)
    lite = with_litert(backbone, weights, None, print)  # LiteRT (XNNPACK), or TF with a notice
    size, bs = spec.input_size, args.batch_size
    keras_model = backbone.model
    model_sizes = sorted({8, 16, 32, bs})

    # Real photos, decoded and resized once, held in memory: random noise can run at a
    # different speed than images do (activation magnitudes, denormals).
    pixels = tf.stack([tfops.load_resized(tf.constant(p), size) for p in paths[: max(model_sizes)]])

    def model_at(batch_size: int, runtime: Any = backbone) -> Callable[[], float]:
        batch = pixels[:batch_size].numpy()

        def measure() -> float:
            calls = max(1, n // batch_size)
            start = time.perf_counter()
            for _ in range(calls):
                runtime.extract(batch)
            return rate(calls * batch_size, time.perf_counter() - start)

        return measure

    def decode_limit() -> float:
        ds = tf.data.Dataset.from_tensor_slices(paths).map(
            lambda p: tfops.load_resized(p, size), num_parallel_calls=tf.data.AUTOTUNE
        )
        ds = ds.batch(bs).prefetch(tf.data.AUTOTUNE)
        start = time.perf_counter()
        count = sum(int(b.shape[0]) for b in ds)
        return rate(count, time.perf_counter() - start)

    def harness_path(runtime: Any = backbone) -> Callable[[], float]:
        def measure() -> float:
            with tempfile.TemporaryDirectory() as cache_dir:
                cache = CacheRoot(cache_dir).bottleneck_cache(spec.name, "bench", backbone.feature_size)
                result = extract_features(runtime, images, cache, batch_size=bs)
                return rate(result.computed + result.cached, result.seconds)

        return measure

    def retrain_style() -> float:
        start = time.perf_counter()
        for p in paths:
            image = tfops.load_resized(tf.constant(p), size)
            backbone.features(image[tf.newaxis]).numpy()
        return rate(n, time.perf_counter() - start)

    link_dir = Path(tempfile.mkdtemp())
    for i, img in enumerate(images):
        (link_dir / img.label).mkdir(exist_ok=True)
        (link_dir / img.label / f"{i:05d}_{img.path.name}").symlink_to(img.path.resolve())

    def keras_tutorial() -> float:
        start = time.perf_counter()
        ds = keras.utils.image_dataset_from_directory(
            link_dir, image_size=(size, size), batch_size=KERAS_TUTORIAL_BATCH, shuffle=False, verbose=False
        )
        ds = ds.map(lambda x, y: tfops.preprocess(x, spec.preprocessing))
        out = keras_model.predict(ds, verbose=0)
        return rate(len(out), time.perf_counter() - start)

    methods = {
        **{f"model@{b}": model_at(b) for b in model_sizes},
        "litert model": model_at(bs, lite),
        "decode": decode_limit,
        "harness": harness_path(),
        "harness litert": harness_path(lite),
        "retrain.py": retrain_style,
        "keras": keras_tutorial,
    }
    if args.litert_only:  # just what the LiteRT ratios need, so many rounds stay affordable
        keep = (f"model@{bs}", "litert model", "decode", "harness", "harness litert")
        methods = {k: methods[k] for k in keep}
    for method in methods.values():  # warm every path once, unmeasured
        method()
    samples: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(args.repeats):
        for key, method in methods.items():
            samples[key].append(method())
    med = {k: statistics.median(v) for k, v in samples.items()}
    med["model"] = med[f"model@{bs}"]
    on_litert = lite.runtime == "litert"

    def limit_of(model: float, decode: float = med["decode"]) -> float:
        return min(model, decode) if on_gpu else 1 / (1 / model + 1 / decode)

    fastest = max(med["model"], med["litert model"]) if on_litert else med["model"]
    limit = limit_of(med["model"])
    # The same ratios within each round, from measurements seconds apart: the VM's drift over
    # minutes cancels in them, and their spread says how far one figure can be trusted.
    rounds = [{k: v[r] for k, v in samples.items()} for r in range(args.repeats)]
    per_round = {
        "litert/fastest limit": [
            s["harness litert"] / limit_of(max(s[f"model@{bs}"], s["litert model"]), s["decode"])
            for s in rounds
        ],
        "harness litert/tf": [s["harness litert"] / s["harness"] for s in rounds],
    }
    row = {
        "backbone": name,
        "weights": weights,
        "runtime": lite.runtime,
        "model img/s": med["model"],
        "decode img/s": med["decode"],
        "limit img/s": limit,
        "harness img/s": med["harness"],
        "harness/limit": med["harness"] / limit,
        "litert model img/s": med["litert model"],
        "fastest limit img/s": limit_of(fastest),
        "harness litert img/s": med["harness litert"],
        "litert/fastest limit": med["harness litert"] / limit_of(fastest),
        "harness litert/tf": med["harness litert"] / med["harness"],
        **{f"{k} (round median)": statistics.median(v) for k, v in per_round.items()},
        **{f"{k} (round range)": f"{min(v):.2f}-{max(v):.2f}" for k, v in per_round.items()},
    }
    if not on_litert:  # it fell back to TensorFlow (the notice said why): no LiteRT figures
        row = {k: None if "litert" in k else v for k, v in row.items()}
    if args.litert_only:
        return row
    best = max(model_sizes, key=lambda b: med[f"model@{b}"])

    # Cold versus warm cache on the same images, and training against extraction.
    with tempfile.TemporaryDirectory() as cache_dir:
        cache = CacheRoot(cache_dir).bottleneck_cache(spec.name, "bench", backbone.feature_size)
        cold = extract_features(backbone, images, cache, batch_size=bs)
        warm = extract_features(backbone, images, cache, batch_size=bs)
    return {
        **row,
        "best model img/s": med[f"model@{best}"],
        "best batch": best,
        "harness/keras": med["harness"] / med["keras"],
        "harness/retrain": med["harness"] / med["retrain.py"],
        "cold/warm": cold.seconds / warm.seconds,
    }


def store_write(n: int, dim: int, root: str) -> None:
    """Write ``n`` random ``dim``-vectors into a bottleneck cache at ``root`` (child process)."""
    import numpy as np

    from harness.pipeline.cacheroot import CacheRoot

    cache = CacheRoot(root).bottleneck_cache("synthetic", "store", dim)
    rng = np.random.default_rng(0)
    per_shard = 65536
    for start in range(0, n, per_shard):
        keys = [f"{i:040x}" for i in range(start, min(n, start + per_shard))]
        cache.write(keys, rng.random((len(keys), dim), dtype=np.float32))


def store_train(n: int, dim: int, root: str) -> None:
    """Train on the store in a fresh process, so its memory is the training's alone.

    Prints data MiB, RssAnon (memory the process owns), RssFile (store pages mapped from
    the page cache: the kernel's, evictable), peak RSS and seconds.
    """
    import numpy as np

    from harness.pipeline.cacheroot import CacheRoot
    from harness.pipeline.train import cached_sampler, train_head
    from harness.plan import TrainConfig

    cache = CacheRoot(root).bottleneck_cache("synthetic", "store", dim)
    start = time.perf_counter()
    features = cache.open_features([f"{i:040x}" for i in range(n)])
    labels = np.random.default_rng(1).integers(0, 5, n)
    train_head(cached_sampler(features, labels), dim, 5, TrainConfig(steps=1000, batch_size=100))
    with open("/proc/self/status") as fh:
        fields = dict(line.split(":", 1) for line in fh)
    mib = {k: int(fields[k].split()[0]) / 1024 for k in ("VmHWM", "RssAnon", "RssFile")}
    print(n * dim * 4 / 2**20, mib["RssAnon"], mib["RssFile"], mib["VmHWM"], time.perf_counter() - start)


def startup_probe(*cli: str) -> None:
    """Run one harness command in-process; print its time and whether TensorFlow got imported."""
    start = time.perf_counter()
    from click.testing import CliRunner

    from harness.cli import cli as harness_cli

    CliRunner().invoke(harness_cli, list(cli))
    print(time.perf_counter() - start, "tensorflow" in sys.modules)


#: Functions the script runs in a fresh child process: ``throughput.py _child NAME ARGS``.
CHILDREN: dict[str, Callable[..., None]] = {
    "store_write": lambda n, dim, root: store_write(int(n), int(dim), root),
    "store_train": lambda n, dim, root: store_train(int(n), int(dim), root),
    "startup_probe": startup_probe,
}


def in_child(name: str, *args: str) -> str:
    """Run ``CHILDREN[name](*args)`` in a fresh Python process; its standard output."""
    done = subprocess.run(
        [sys.executable, __file__, "_child", name, *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def store_benchmark(n: int, dim: int) -> str:
    """Train on a synthetic store of ``n`` cached vectors in a fresh process; report its memory."""
    with tempfile.TemporaryDirectory() as root:
        in_child("store_write", str(n), str(dim), root)
        out = in_child("store_train", str(n), str(dim), root)
    data_mb, anon_mb, file_mb, peak_mb, seconds = (float(x) for x in out.split())
    return (
        f"synthetic store: {n:,} cached vectors x {dim} = {data_mb:,.0f} MiB; opening it and training "
        f"1000 steps of 100 took {seconds:.1f} s; the process then held {anon_mb:,.0f} MiB of its own "
        f"memory ({anon_mb / data_mb:.2f}x the data) plus {file_mb:,.0f} MiB of mapped store pages "
        f"(page cache), peak RSS {peak_mb:,.0f} MiB"
    )


def run_memory(image_dir: Path, weights_dir: Path | None) -> str:
    """Peak RSS of a real `harness train` over every image, cold cache, in a child process."""
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable,
            "-m",
            "harness",
            "train",
            "--image-dir",
            str(image_dir),
            "--backbone",
            "mobilenet_v1_100",
            "--cache-dir",
            f"{tmp}/cache",
            "--output-dir",
            f"{tmp}/model",
        ]
        if weights_dir:
            command += ["--weights-dir", str(weights_dir)]
        subprocess.run(command, capture_output=True, check=True)
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return f"peak RSS of `harness train` on all images (mobilenet_v1_100, cold cache): {peak_gib:.2f} GiB"


def print_table(rows: list[dict]) -> None:
    print(" | ".join(rows[0]))
    for r in rows:
        print(" | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r.values()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-dir", required=True, type=Path)
    parser.add_argument("--weights-dir", type=Path)
    parser.add_argument(
        "--backbones",
        default="mobilenet_v1_025,mobilenet_v1_075,mobilenet_v1_100,mobilenet_v2_035,mobilenet_v3_small,inception_v3",
    )
    parser.add_argument("--images", type=int, default=384, help="Images per measurement.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, help="harness' batch [default: its own for the device]")
    parser.add_argument(
        "--store-vectors", type=int, default=1_000_000, help="Synthetic store size (0: skip)."
    )
    parser.add_argument("--skip-memory-run", action="store_true", help="Skip the full `harness train` run.")
    parser.add_argument(
        "--runtimes",
        action="store_true",
        help="Every runtime and precision side by side (benchmarks/runtime_limits.py), then stop.",
    )
    parser.add_argument(
        "--litert-only",
        action="store_true",
        help="Measure only the LiteRT ratios (model on both runtimes, decode, harness on both), then stop.",
    )
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from harness.pipeline.images import scan_images
    from harness.pipeline.train import cached_sampler, train_head
    from harness.plan import Device, TrainConfig

    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    args.batch_size = args.batch_size or (Device.GPU if on_gpu else Device.CPU).extract_batch_size
    all_images = scan_images(args.image_dir).images
    step = max(1, len(all_images) // args.images)
    images = all_images[::step][: args.images]
    n = len(images)
    bs = args.batch_size
    rows = []
    if args.runtimes:
        from runtime_limits import header, measure_runtimes

        print(header(), flush=True)
        for name in [b.strip() for b in args.backbones.split(",") if b.strip()]:
            row = measure_runtimes(name, images, args.weights_dir, bs, args.repeats)
            print(f"\n{name} ({args.repeats} alternating rounds, {n} images, batch {bs}):", flush=True)
            for key, value in row.items():
                print(f"  {key:32s} {value:,.2f}" if isinstance(value, float) else f"  {key:32s} {value}")
            keras.backend.clear_session()
        return 0
    for name in [b.strip() for b in args.backbones.split(",") if b.strip()]:
        rows.append(measure_backbone(name, images, args, on_gpu))
        print(
            f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in rows[-1].items() if isinstance(v, float)),
            flush=True,
        )
        keras.backend.clear_session()
    if args.litert_only:
        print(f"\n{args.repeats} alternating rounds, {n} images, batch {bs}\n")
        print_table(rows)
        return 0

    # Final-layer training on 1,500 cached 1024-dim bottlenecks vs cold extraction of 1,500.
    rng = np.random.default_rng(0)
    features = rng.random((1500, 1024), dtype=np.float32) * 6
    labels = rng.integers(0, 5, 1500)
    start = time.perf_counter()
    train_head(cached_sampler(features, labels), 1024, 5, TrainConfig(steps=4000, batch_size=100))
    train_seconds = time.perf_counter() - start
    ref = next((r for r in rows if r["backbone"] == "mobilenet_v1_100"), rows[0])
    cold_1500 = 1500 / ref["harness img/s"]

    def startup(*cli: str) -> tuple[float, bool]:
        start = time.perf_counter()
        out = in_child("startup_probe", *cli)
        return time.perf_counter() - start, out.split()[-1] == "True"

    help_s, help_tf = startup("--help")
    list_s, list_tf = startup("backbones")

    formula = (
        "min(model, decode) [model on GPU]" if on_gpu else "1 / (1/model + 1/decode) [CPU: shared cores]"
    )
    print(
        f"\npipeline limit = {formula}; {args.repeats} alternating repetitions, {n} images; "
        f"harness and model batch {bs}, Keras tutorial batch {KERAS_TUTORIAL_BATCH}\n"
    )
    print_table(rows)
    print(
        f"\ntraining 4000 steps x 100 on 1500 x 1024: {train_seconds:.2f} s = "
        f"{train_seconds / cold_1500:.1%} of the cold extraction of 1500 images with {ref['backbone']} "
        f"({cold_1500:.1f} s)"
    )
    print(f"harness --help: {help_s:.2f} s, imports TensorFlow: {help_tf}")
    print(f"harness backbones: {list_s:.2f} s, imports TensorFlow: {list_tf}")
    if not args.skip_memory_run:
        print(run_memory(args.image_dir, args.weights_dir))
    if args.store_vectors:
        print(store_benchmark(args.store_vectors, 256))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_child":
        CHILDREN[sys.argv[2]](*sys.argv[3:])
        sys.exit(0)
    sys.exit(main())
