"""What Ray Data costs against local extraction on one machine, same process, alternating.

    .venv/bin/python benchmarks/ray_overhead.py --image-dir ../shared/data/flower_photos_subset \\
        --weights-dir ../shared/keras_home/models [--backbones mobilenet_v1_100,...] [--address local]

For each backbone, computes the bottlenecks of every image, ``--repeat`` times over (no
cache), locally and on Ray, ``--rounds`` times, and prints median rates and ratios: over
the whole call (Ray's includes starting the actor pool: a worker imports TensorFlow and
builds the backbone), and Ray's marginal rate, from Ray on half the images and on all of
them: ``half / (T(all) - T(half))``, the rate that decides what a million photos cost,
with the fixed start it leaves (``T(half) - half / marginal``). Needs the ray extra.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def timed(stream, paths: list[str]) -> tuple[float, int]:  # noqa: ANN001
    """(seconds, images that came back)."""
    start = time.perf_counter()
    done = sum(len(index) for index, _ in stream(paths))
    return time.perf_counter() - start, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-dir", required=True)
    parser.add_argument("--weights-dir")
    parser.add_argument("--backbones", default="mobilenet_v1_100,mobilenet_v2_035,mobilenet_v1_025")
    parser.add_argument("--address", default="local")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--per-call", type=int, help="images per actor call (default: the product's)")
    parser.add_argument("--repeat", type=int, default=4, help="each file this many times: startup amortised")
    args = parser.parse_args()

    from harness.pipeline.backbone import load_backbone
    from harness.pipeline.dataset import prepare_dataset
    from harness.pipeline.distributed import connect, ray_stream
    from harness.pipeline.extract import local_stream
    from harness.pipeline.litert import with_litert
    from harness.registry import registry

    dataset = prepare_dataset(args.image_dir)
    paths = [img.file for img in dataset.images.images] * args.repeat
    resources = connect(args.address)
    print(f"{len(paths)} images; Ray cluster: {resources.get('CPU', 0):.0f} CPUs")
    print("backbone          local img/s  ray img/s  ratio   ray marginal img/s  ratio   start s")
    with tempfile.TemporaryDirectory() as cache_dir:
        for name in args.backbones.split(","):
            spec = registry.get(name)
            backbone = with_litert(
                load_backbone(spec, "imagenet", args.weights_dir), "imagenet", cache_dir, print
            )
            local = local_stream(backbone, 16)
            remote = ray_stream(
                args.address,
                spec,
                weights="imagenet",
                weights_dir=args.weights_dir,
                runtime=backbone.runtime,
                cache_dir=cache_dir,
                batch_size=16,
                per_call=args.per_call,
            )
            half = paths[: len(paths) // 2]
            local_rate, ray_rate, marginal, start_s = [], [], [], []
            for _ in range(args.rounds):
                local_rate.append(len(paths) / timed(local, paths)[0])
                short = timed(remote, half)[0]
                whole = timed(remote, paths)[0]
                ray_rate.append(len(paths) / whole)
                # Twice the images cost (whole - short) more: the per-image rate without the
                # fixed start, which is what is left of short at that rate.
                marginal.append((len(paths) - len(half)) / (whole - short))
                start_s.append(short - len(half) / marginal[-1])
            lo, ra, ma = (statistics.median(v) for v in (local_rate, ray_rate, marginal))
            print(
                f"{name:17s} {lo:11.1f} {ra:10.1f} {ra / lo:6.2f}   {ma:18.1f} {ma / lo:6.2f}"
                f"   {statistics.median(start_s):7.1f}",
                flush=True,
            )
        print(
            f"driver ingest (features into the cache, 1,024 floats each): {driver_rate(cache_dir):,.0f} img/s"
        )
    return 0


def driver_rate(cache_dir: str, n: int = 20000, width: int = 1024, batch: int = 128) -> float:
    """How fast this process takes streamed features into the cache: the ceiling of a
    cluster of any size, since every feature comes back here."""
    import hashlib

    import numpy as np

    from harness.pipeline.cache import BottleneckCache
    from harness.pipeline.extract import extract_features
    from harness.pipeline.images import ImageFile

    images = [
        ImageFile(f"/x/{i}.jpg", "a", hashlib.sha1(str(i).encode()).hexdigest(), "jpeg") for i in range(n)
    ]
    block = np.random.default_rng(0).random((batch, width), dtype=np.float32)

    def stream(paths):  # noqa: ANN001, ANN202
        for start in range(0, len(paths), batch):
            index = np.arange(start, min(start + batch, len(paths)))
            yield index, block[: len(index)]

    cache = BottleneckCache(cache_dir, "ingest", "benchmark", width)
    began = time.perf_counter()
    extract_features(None, images, cache, stream=stream)  # type: ignore[arg-type]
    return n / (time.perf_counter() - began)


if __name__ == "__main__":
    sys.exit(main())
